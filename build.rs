// SPDX-License-Identifier: MPL-2.0
/// Where the plugin comes from, as `gst-inspect-1.0` shows it (its Origin URL): what a packager
/// sets in QUARTZNETSTT_PACKAGE_ORIGIN (meson's `package-origin` option), else GStreamer's
/// own wording for a build nobody vouched for. The project has no public home yet, so no
/// address is made up.
const UNKNOWN_ORIGIN: &str = "Unknown package origin";

fn main() {
    gst_plugin_version_helper::info();
    println!("cargo:rerun-if-env-changed=QUARTZNETSTT_PACKAGE_ORIGIN");
    let origin = std::env::var("QUARTZNETSTT_PACKAGE_ORIGIN")
        .ok()
        .filter(|o| !o.trim().is_empty())
        .unwrap_or_else(|| UNKNOWN_ORIGIN.to_string());
    println!("cargo:rustc-env=QUARTZNETSTT_PACKAGE_ORIGIN={origin}");
}
