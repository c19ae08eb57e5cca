#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
# Subtitles burned into video: the transcript of a WAV file is drawn by textoverlay onto a
# test video, each phrase shown from the first to the last of its words (the text buffers'
# timestamps and durations; GAP events let the video run on between phrases).
# The video is 10 s at 10 fps, as long as the default WAV, written as raw I420 320x240 to
# $QUARTZNETSTT_OUT/quartznetstt-overlay.yuv; to watch it instead, replace everything after
# textoverlay with "videoconvert ! autovideosink".
# Run from the repository root with the plugin on GST_PLUGIN_PATH (see pipelines/README.md).
gst-launch-1.0 -q filesrc location="${QUARTZNETSTT_AUDIO:-samples/LJ001-0001.wav}" ! wavparse ! audioconvert ! audioresample ! quartznetstt ! overlay.text_sink videotestsrc num-buffers=100 pattern=black ! video/x-raw,format=I420,width=320,height=240,framerate=10/1 ! textoverlay name=overlay font-desc="Sans 10" wrap-mode=wordchar ! filesink location="${QUARTZNETSTT_OUT:-/tmp}/quartznetstt-overlay.yuv"
