#!/usr/bin/python3
# SPDX-License-Identifier: MPL-2.0
"""Transcribes a file (or any URI GStreamer can read) with the quartznetstt element and
prints every final word with its start and end (seconds of the input's stream time) and its
confidence, read from the element's `quartznetstt` bus messages (README, "Bus messages"):

     1.380   1.700  0.93  hello

    /usr/bin/python3 examples/bus_words.py FILE_OR_URI [MODEL.onnx]

Without a model the element uses the bundled English one. It needs PyGObject with the
GStreamer typelibs (Debian: python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0),
hence the system Python in the line above (a pyenv or venv Python usually lacks `gi`), and
the plugin: installed, or found through GST_PLUGIN_PATH, e.g. after `cargo build`:

    GST_PLUGIN_PATH=target/debug /usr/bin/python3 examples/bus_words.py samples/LJ001-0001.wav

Exits with status 1 and the error on stderr on an ERROR message.
"""

import os
import sys
import warnings

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def words_of(message):
    """The `word` structures of a `quartznetstt` message, in order.

    `words` is a GstValueArray. PyGObject reads it with Structure.get_array (a GValueArray);
    Structure.get_value needs the gst-python overrides (python3-gst-1.0), which are optional.
    """
    ok, array = message.get_array("words")
    if not ok:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # Copies: the structures belong to the array, freed when this returns.
        return [array.get_nth(i).copy() for i in range(array.n_values)]


def main(argv):
    if len(argv) not in (2, 3):
        print(f"usage: {argv[0]} FILE_OR_URI [MODEL.onnx]", file=sys.stderr)
        return 2
    Gst.init(None)
    source = argv[1]
    uri = source if Gst.uri_is_valid(source) else Gst.filename_to_uri(os.path.abspath(source))

    try:
        pipeline = Gst.parse_launch(
            "uridecodebin name=source ! audioconvert ! audioresample"
            " ! quartznetstt name=stt ! fakesink"
        )
    except GLib.Error as error:
        # Typically: no element "quartznetstt" (not installed, GST_PLUGIN_PATH not set).
        print(f"error: {error.message} (is GST_PLUGIN_PATH set?)", file=sys.stderr)
        return 1
    pipeline.get_by_name("source").set_property("uri", uri)
    if len(argv) == 3:
        pipeline.get_by_name("stt").set_property("model-path", argv[2])

    bus = pipeline.get_bus()
    # When the pipeline cannot start (a missing file, a bad model), the element that failed
    # has posted an ERROR saying why: read what is on the bus, without waiting.
    started = pipeline.set_state(Gst.State.PLAYING) != Gst.StateChangeReturn.FAILURE
    try:
        return print_words(bus, Gst.CLOCK_TIME_NONE if started else 0)
    finally:
        pipeline.set_state(Gst.State.NULL)


def print_words(bus, timeout):
    """Prints the final words of the `quartznetstt` messages until EOS; returns the exit
    status: 1 on an ERROR message, or when no message comes within `timeout`."""
    while True:
        message = bus.timed_pop_filtered(
            timeout, Gst.MessageType.ELEMENT | Gst.MessageType.ERROR | Gst.MessageType.EOS
        )
        if message is None:
            print("error: the pipeline did not start", file=sys.stderr)
            return 1
        if message.type == Gst.MessageType.ERROR:
            error, debug = message.parse_error()
            print(f"error from {message.src.get_name()}: {error.message}", file=sys.stderr)
            if debug:
                print(debug, file=sys.stderr)
            return 1
        if message.type == Gst.MessageType.EOS:
            return 0
        s = message.get_structure()
        if s is None or s.get_name() != "quartznetstt":
            continue
        if not s.get_value("final"):
            continue  # words not final yet: the final message repeats them
        words = words_of(s)
        if not words:
            # A final message without words ends a stream (EOS, new segment, timestamp jump).
            print(f"(end of stream at {s.get_value('end'):.3f} s)")
            continue
        for word in words:
            print(
                f"{word.get_value('start'):7.3f} {word.get_value('end'):7.3f}"
                f"  {word.get_value('confidence'):.2f}  {word.get_string('text')}"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
