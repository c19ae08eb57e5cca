#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
# A Matroska file with the audio (FLAC) and its transcript as a UTF-8 subtitle track, written
# to $QUARTZNETSTT_OUT/quartznetstt.mkv.
# The text of a chunk comes out only after chunk + right context of audio (4.5 s by default,
# longer while a word is still being spoken), and matroskamux interleaves by time, so the
# audio branch's queue must be unbounded or the tee stalls both branches.
# Run from the repository root with the plugin on GST_PLUGIN_PATH (see pipelines/README.md).
gst-launch-1.0 -q filesrc location="${QUARTZNETSTT_AUDIO:-samples/LJ001-0001.wav}" ! wavparse ! tee name=audio ! queue ! audioconvert ! audioresample ! quartznetstt ! mux.subtitle_0 audio. ! queue max-size-time=0 max-size-bytes=0 max-size-buffers=0 ! audioconvert ! flacenc ! mux.audio_0 matroskamux name=mux ! filesink location="${QUARTZNETSTT_OUT:-/tmp}/quartznetstt.mkv"
