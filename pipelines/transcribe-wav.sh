#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
# Transcribes a WAV file and prints the text on stdout: one line per phrase
# (separator=newline because the reader is a terminal or a file, not textoverlay).
# audioconvert ! audioresample make any WAV fit: the element only takes S16LE mono at the
# model's rate. -q keeps gst-launch's own progress lines out of the transcript.
# Run from the repository root with the plugin on GST_PLUGIN_PATH (see pipelines/README.md).
gst-launch-1.0 -q filesrc location="${QUARTZNETSTT_AUDIO:-samples/LJ001-0001.wav}" ! wavparse ! audioconvert ! audioresample ! quartznetstt separator=newline ! fdsink fd=1
