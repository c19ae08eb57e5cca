// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty)]

/**
 * plugin-quartznetstt:
 *
 * Offline, live speech-to-text with NVIDIA NeMo QuartzNet (CTC) models run through ONNX
 * Runtime. The maths (feature frontend, windowing, CTC decoding) lives in plain Rust
 * modules; `quartznetstt` is the GStreamer glue.
 */
use gst::glib;

pub mod beam;
pub mod ctc;
pub mod decoder;
pub mod default_model;
pub mod description;
pub mod frontend;
pub mod lm;
mod locate;
pub mod model;
pub mod npy;
pub mod options;
pub mod runtime;
pub mod streaming;

mod quartznetstt;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // An ONNX Runtime library installed beside the plugin file is found without variables.
    if let Some(dir) = plugin
        .filename()
        .and_then(|f| f.parent().map(|d| d.to_path_buf()))
    {
        runtime::set_plugin_dir(dir);
    }
    quartznetstt::register(plugin)
}

gst::plugin_define!(
    quartznetstt,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
