// SPDX-License-Identifier: MPL-2.0
//! What the element's integration tests share (the engine's tests use `tests/common` only,
//! which knows nothing of the plugin).

/// GStreamer initialised and the plugin registered, once per test binary.
pub fn init() {
    use std::sync::Once;
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstquartznetstt::plugin_register_static().expect("plugin registers");
    });
}
