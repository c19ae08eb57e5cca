#!/bin/sh
# SPDX-License-Identifier: MPL-2.0
# A live source: audiotestsrc is-live=true stands in for a microphone (swap it for
# autoaudiosrc to talk to it) and stops after 50 buffers of 100 ms, so the run ends by itself.
# fakesink sync=true renders the text against the clock, so this shows that the latency the
# element reports (its latency property) keeps its text on time in a live pipeline. The queue
# before the element lets capture go on while the model runs; the one after it keeps the
# sink, which waits for each text's time, from blocking the element (and so the capture).
# -m prints the recognition results posted on the bus.
# Run from the repository root with the plugin on GST_PLUGIN_PATH (see pipelines/README.md).
gst-launch-1.0 -m audiotestsrc is-live=true num-buffers=50 samplesperbuffer=1600 wave=ticks ! audio/x-raw,rate=16000,channels=1 ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=10000000000 ! audioconvert ! audioresample ! quartznetstt ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! fakesink sync=true
