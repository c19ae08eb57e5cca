#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
# Any audio or video file to a WebVTT subtitle file, $QUARTZNETSTT_OUT/quartznetstt.vtt:
# decodebin plays mp3, Ogg, FLAC, a video's sound track...; each phrase buffer (cut as captions
# are: at most two lines of 42 characters, 7 s) becomes one cue of webvttenc (gst-plugins-bad;
# srtenc beside it writes SubRip the same way).
# Run from the repository root with the plugin on GST_PLUGIN_PATH (see pipelines/README.md).
gst-launch-1.0 -q filesrc location="${QUARTZNETSTT_AUDIO:-samples/LJ001-0001.wav}" ! decodebin ! audioconvert ! audioresample ! quartznetstt ! webvttenc ! filesink location="${QUARTZNETSTT_OUT:-/tmp}/quartznetstt.vtt"
