#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
# Word-level timing: granularity=word makes one text buffer per word, timed to the word, and
# -m prints the element's "quartznetstt" bus messages, which carry every word's start,
# end (seconds) and confidence (final=true for finished words, final=false for the word still
# being spoken; a final message without words ends the stream). The text buffers themselves
# are dropped by fakesink: the messages are the output here.
# Run from the repository root with the plugin on GST_PLUGIN_PATH (see pipelines/README.md).
gst-launch-1.0 -m filesrc location="${QUARTZNETSTT_AUDIO:-samples/LJ001-0001.wav}" ! wavparse ! audioconvert ! audioresample ! quartznetstt granularity=word ! fakesink
