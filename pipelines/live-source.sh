#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
# A live source: audiotestsrc is-live=true stands in for a microphone (swap it for
# autoaudiosrc to talk to it) and stops after 50 buffers of 100 ms, so the run ends by itself.
# fakesink sync=true renders the text against the clock, so this shows that the latency the
# element reports (chunk + right context + word hold + processing) keeps its text on time in a
# live pipeline.
# -m prints the recognition results posted on the bus.
# Run from the repository root with the plugin on GST_PLUGIN_PATH (see pipelines/README.md).
gst-launch-1.0 -m audiotestsrc is-live=true num-buffers=50 samplesperbuffer=1600 wave=ticks ! audio/x-raw,rate=16000,channels=1 ! audioconvert ! audioresample ! quartznetstt model-path="${QUARTZNETSTT_MODEL:-tests/fixtures/models/quartznet-tiny.onnx}" ! fakesink sync=true
