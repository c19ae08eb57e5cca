#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The arm64 check (README, *Platforms*): cross-builds the plugin and quartznet-transcribe for
# aarch64-unknown-linux-gnu (a Raspberry Pi 4 or 5 on Raspberry Pi OS bookworm, which has
# Debian bookworm's GStreamer 1.22) against Debian's arm64 GStreamer packages, then runs under
# qemu-user-static `gst-inspect-1.0 quartznetstt` and the client on the bundled samples with
# the default model and PyPI's aarch64 ONNX Runtime, and compares the words with this
# machine's x86_64 build. Prints each step's time and the words of both; exits 1 if they
# differ.
#
#   bash tools/arm64_check.sh [SAMPLE.wav ...]      (default: the three samples/*.wav)
#
# Nothing arm64 is installed into the system: Debian's arm64 packages are downloaded with a
# private apt state (the system's dpkg architectures and lists are untouched) and unpacked
# into a sysroot under $QUARTZNETSTT_ARM64_DIR (default ~/.cache/quartznetstt/arm64), because
# several of them (gstreamer1.0-tools, libgstreamer-plugins-base1.0-dev) cannot be installed
# beside their amd64 versions. The host tools (gcc-aarch64-linux-gnu, qemu-user-static, both
# amd64 packages) are installed with apt when missing and run as root; the Rust target with
# rustup. Safe to run again: only what is missing is fetched, and cargo builds incrementally.
# The cross build is the long part (about half an hour on 2 shared cores, `nice`d).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=${QUARTZNETSTT_ARM64_DIR:-$HOME/.cache/quartznetstt/arm64}
sysroot=$work/sysroot
triple=aarch64-unknown-linux-gnu
multiarch=aarch64-linux-gnu
target_dir=${CARGO_TARGET_DIR:-$root/target}
start=$(date +%s)
mkdir -p "$work"

step() { echo "arm64_check: [$(($(date +%s) - start)) s] $*"; }

# --- host tools --------------------------------------------------------------------------
host_tools=(gcc-aarch64-linux-gnu qemu-user-static)
missing=()
for p in "${host_tools[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "arm64_check: please install: ${missing[*]} (sudo apt-get install ...)" >&2
    exit 1
  fi
  step "installing ${missing[*]} (amd64 packages)"
  # A dry run first: nothing amd64 may be removed for them.
  if apt-get -s install --no-install-recommends "${missing[@]}" | grep -q '^Remv'; then
    echo "arm64_check: installing ${missing[*]} would remove packages; not done" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"

# --- the arm64 sysroot ---------------------------------------------------------------------
# Build: GStreamer's and GLib's development files and what their pkg-config files require.
# Run: the C and C++ runtime, GStreamer, the tools (gst-inspect-1.0) and the plugins the
# client's pipeline uses (uridecodebin ! audioconvert ! audioresample, wavparse).
packages=(
  libc6 libgcc-s1 libstdc++6 libglib2.0-0 libffi8 libpcre2-8-0 libmount1 libselinux1 libblkid1
  zlib1g libgstreamer1.0-0 gstreamer1.0-tools libgstreamer-plugins-base1.0-0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good liborc-0.4-0 libunwind8 libdw1 libelf1
  liblzma5 libzstd1 libbz2-1.0
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libglib2.0-dev libffi-dev libpcre2-dev
  libmount-dev libblkid-dev libselinux1-dev libsepol-dev zlib1g-dev libunwind-dev libdw-dev
  libelf-dev liborc-0.4-dev liblzma-dev libzstd-dev libbz2-dev
)
# The marker holds the list it was made from: a changed list makes the sysroot again.
if [ "$(cat "$sysroot/.complete" 2>/dev/null)" != "${packages[*]}" ]; then
  step "downloading ${#packages[@]} Debian bookworm arm64 packages into $sysroot"
  apt_state=$work/apt
  mkdir -p "$apt_state/lists/partial" "$apt_state/cache/archives/partial" "$work/debs"
  touch "$apt_state/status"
  apt_options=(-o APT::Architecture=arm64 -o APT::Architectures=arm64
    -o Dir::State::Lists="$apt_state/lists" -o Dir::State::status="$apt_state/status"
    -o Dir::Cache="$apt_state/cache" -o Debug::NoLocking=1)
  apt-get "${apt_options[@]}" update -qq
  (cd "$work/debs" && apt-get "${apt_options[@]}" download "${packages[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  rm -rf "$sysroot"
  mkdir -p "$sysroot"
  for deb in "$work"/debs/*_arm64.deb "$work"/debs/*_all.deb; do
    [ -f "$deb" ] || continue
    dpkg-deb -x "$deb" "$sysroot"
  done
  # Absolute links (a few -dev packages' lib*.so) must point into the sysroot.
  find "$sysroot" -type l -lname '/*' | while read -r link; do
    ln -sfn "$sysroot$(readlink "$link")" "$link"
  done
  echo "${packages[*]}" > "$sysroot/.complete"
fi
libdirs=("$sysroot/usr/lib/$multiarch" "$sysroot/lib/$multiarch")

# --- ONNX Runtime for aarch64 (PyPI, checksum-pinned) --------------------------------------
ort_lib=$(bash "$root/tools/fetch_onnxruntime.sh" aarch64 "$work/onnxruntime")

# --- the cross build -----------------------------------------------------------------------
step "cross-building the plugin and quartznet-transcribe for $triple (release)"
build_start=$(date +%s)
export PKG_CONFIG_SYSROOT_DIR=$sysroot
export PKG_CONFIG_LIBDIR="$sysroot/usr/lib/$multiarch/pkgconfig:$sysroot/usr/share/pkgconfig"
export PKG_CONFIG_ALLOW_CROSS=1
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
rpath_link=""
for dir in "${libdirs[@]}"; do
  rpath_link+=" -C link-arg=-L$dir -C link-arg=-Wl,-rpath-link,$dir"
done
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="${rpath_link# }"
(cd "$root" && nice -n 10 cargo build --release --target "$triple" \
  -p gst-plugin-quartznetstt -p quartznet-transcribe)
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR PKG_CONFIG_ALLOW_CROSS
out=$target_dir/$triple/release
step "cross build done in $(($(date +%s) - build_start)) s"
file "$out/libgstquartznetstt.so" "$out/quartznet-transcribe"

# --- run under qemu ------------------------------------------------------------------------
# Only the plugins the checks use, so the registry holds no plugin whose libraries the
# sysroot lacks.
plugins=$work/gst-plugins
rm -rf "$plugins"
mkdir -p "$plugins"
for p in coreelements audioconvert audioresample playback typefindfunctions wavparse app; do
  cp "$sysroot/usr/lib/$multiarch/gstreamer-1.0/libgst$p.so" "$plugins/"
done
cp "$out/libgstquartznetstt.so" "$plugins/"
# ONNX Runtime's cpuinfo reads /proc/cpuinfo and /sys/devices/system/cpu, which qemu-user
# passes through from the x86_64 host, and crashes on them (a null pointer: no "CPU part"
# lines, x86 cache topology). qemu opens a path under its -L prefix first when it exists
# there, so the sysroot gets a Raspberry Pi 4's: 4 Cortex-A72 (0x41/0xd08) at 1.5 GHz, 32K L1D
# and 48K L1I per core, 1M L2 shared. QEMU_CPU=cortex-a72 gives the same instruction set, so
# ONNX Runtime picks the kernels a Pi 4 runs (no dot-product or SVE ones).
fake() { mkdir -p "$(dirname "$sysroot/$1")"; printf '%s\n' "$2" > "$sysroot/$1"; }
cpu=sys/devices/system/cpu
for f in present possible online; do fake "$cpu/$f" 0-3; done
fake "$cpu/kernel_max" 255
for n in 0 1 2 3; do
  fake "$cpu/cpu$n/topology/physical_package_id" 0
  fake "$cpu/cpu$n/topology/core_id" "$n"
  fake "$cpu/cpu$n/topology/cluster_cpus_list" 0-3
  fake "$cpu/cpu$n/topology/core_siblings_list" 0-3
  fake "$cpu/cpu$n/topology/thread_siblings_list" "$n"
  fake "$cpu/cpu$n/cpufreq/cpuinfo_max_freq" 1500000
  fake "$cpu/cpu$n/cpufreq/cpuinfo_min_freq" 600000
  i=0
  for cache in "1 Data 32K $n" "1 Instruction 48K $n" "2 Unified 1024K 0-3"; do
    read -r level type size shared <<<"$cache"
    fake "$cpu/cpu$n/cache/index$i/level" "$level"
    fake "$cpu/cpu$n/cache/index$i/type" "$type"
    fake "$cpu/cpu$n/cache/index$i/size" "$size"
    fake "$cpu/cpu$n/cache/index$i/shared_cpu_list" "$shared"
    i=$((i + 1))
  done
done
mkdir -p "$sysroot/proc"
for n in 0 1 2 3; do
  printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$n"
done > "$sysroot/proc/cpuinfo"
export QEMU_CPU=cortex-a72
qemu=(qemu-aarch64-static -L "$sysroot")
arm_env=(env GST_REGISTRY="$work/registry-arm64.bin" GST_REGISTRY_FORK=no
  GST_PLUGIN_SYSTEM_PATH="$plugins" GST_PLUGIN_PATH= QUARTZNETSTT_ONNXRUNTIME="$ort_lib")
rm -f "$work/registry-arm64.bin"

step "gst-inspect-1.0 quartznetstt under qemu-aarch64"
"${arm_env[@]}" "${qemu[@]}" "$sysroot/usr/bin/gst-inspect-1.0" quartznetstt > "$work/inspect.txt"
sed -n '1,/^Pad Templates/p' "$work/inspect.txt" | grep -E "Factory Details|Long-name|Klass|Plugin Details|Name |Filename|Version" || true
grep -q "execution-provider" "$work/inspect.txt"

samples=("$@")
[ ${#samples[@]} -gt 0 ] || samples=("$root"/samples/*.wav)
step "x86_64 build of quartznet-transcribe (for the words to compare with)"
(cd "$root" && nice -n 10 cargo build --release -p quartznet-transcribe)
host_cli=$target_dir/release/quartznet-transcribe

status=0
for sample in "${samples[@]}"; do
  name=$(basename "$sample")
  t0=$(date +%s.%N)
  "$host_cli" --format json "$sample" > "$work/$name.x86_64.json"
  t1=$(date +%s.%N)
  "${arm_env[@]}" "${qemu[@]}" "$out/quartznet-transcribe" --format json "$sample" > "$work/$name.aarch64.json"
  t2=$(date +%s.%N)
  words() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["text"] if "text" in d else d)' "$1"; }
  x86=$(words "$work/$name.x86_64.json")
  arm=$(words "$work/$name.aarch64.json")
  printf '%s: x86_64 %.1f s, aarch64 under qemu %.1f s\n  x86_64:  %s\n  aarch64: %s\n' \
    "$name" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$x86" "$arm"
  if [ "$x86" = "$arm" ]; then
    echo "  same words"
  else
    echo "  DIFFERENT words"
    status=1
  fi
done
step "done"
exit $status
