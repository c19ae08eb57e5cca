// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty)]

/**
 * plugin-quartznetstt:
 *
 * Offline, live speech-to-text with CTC models run through ONNX Runtime: a bundled English
 * phoneme model with a pronunciation lexicon, and NVIDIA NeMo QuartzNet (character CTC) models. The recognition engine (feature frontend, windowing, CTC decoding) is the
 * `quartznet-engine` crate; `quartznetstt` is the GStreamer glue.
 */
use gst::glib;

mod quartznetstt;

pub use quartznetstt::{Decoder, Granularity, Normalize, Padding, QuartzNetStt};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // An ONNX Runtime library installed beside the plugin file, and the model installed
    // under the same prefix, are found without variables.
    if let Some(dir) = plugin
        .filename()
        .and_then(|f| f.parent().map(|d| d.to_path_buf()))
    {
        quartznet_engine::model::set_plugin_dir(dir);
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
    env!("QUARTZNETSTT_PACKAGE_ORIGIN"),
    env!("BUILD_REL_DATE")
);
