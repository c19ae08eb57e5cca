// SPDX-License-Identifier: MPL-2.0
use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct QuartzNetStt(ObjectSubclass<imp::QuartzNetStt>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub use imp::{Granularity, Normalize, Padding};

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // Lets gst-inspect and the documentation tools describe the enum properties.
    {
        Granularity::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
        Normalize::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
        Padding::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    }
    gst::Element::register(
        Some(plugin),
        "quartznetstt",
        gst::Rank::NONE,
        QuartzNetStt::static_type(),
    )
}
