#!/usr/bin/python3
# SPDX-License-Identifier: MPL-2.0
"""Time from NULL to the first words when an element is probed before it plays, as
transcriberbin does with its transcriber (PAUSED, back to NULL, then PLAYING).

    GST_PLUGIN_PATH=target/release /usr/bin/python3 benches/probe_and_play.py [WAV] [PROPS...]

Prints the time of each step; run it against two plugin builds on the same machine to
compare (one load instead of two shows in "PLAYING to first words").
"""
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def settle(pipeline, state):
    pipeline.set_state(state)
    pipeline.get_state(Gst.CLOCK_TIME_NONE)


def main():
    Gst.init(None)
    wav = sys.argv[1] if len(sys.argv) > 1 else "samples/LJ001-0001.wav"
    props = " ".join(sys.argv[2:]) or "latency=4000"
    pipeline = Gst.parse_launch(
        f"filesrc location={wav} ! wavparse ! audioconvert ! audioresample "
        f"! quartznetstt {props} ! fakesink"
    )
    bus = pipeline.get_bus()
    t0 = time.monotonic()
    settle(pipeline, Gst.State.PAUSED)
    t1 = time.monotonic()
    settle(pipeline, Gst.State.NULL)
    t2 = time.monotonic()
    pipeline.set_state(Gst.State.PLAYING)
    t3 = None
    while t3 is None:
        message = bus.timed_pop(60 * Gst.SECOND)
        if message is None or message.type in (Gst.MessageType.ERROR, Gst.MessageType.EOS):
            pipeline.set_state(Gst.State.NULL)
            sys.exit(f"no words: {message.parse_error() if message else 'timeout'}")
        structure = message.get_structure()
        if (
            message.type == Gst.MessageType.ELEMENT
            and structure.get_name() == "quartznetstt"
            and structure.get_string("text").strip()
        ):
            t3 = time.monotonic()
    pipeline.set_state(Gst.State.NULL)
    print(
        f"PAUSED {t1 - t0:.2f} s, back to NULL {t2 - t1:.2f} s, "
        f"PLAYING to first words {t3 - t2:.2f} s, NULL to first words {t3 - t0:.2f} s"
    )


if __name__ == "__main__":
    main()
