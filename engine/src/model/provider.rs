// SPDX-License-Identifier: MPL-2.0
//! Where ONNX Runtime runs a model: the CPU (the default), an NVIDIA GPU through CUDA or
//! TensorRT, or CUDA when it loads and the CPU otherwise (`auto`).
//!
//! A GPU provider needs the GPU build of ONNX Runtime (PyPI's `onnxruntime-gpu`, installed by
//! `tools/setup.sh --gpu`) and NVIDIA's CUDA and cuDNN libraries. ONNX Runtime loads those
//! when a session asks for the provider; `ort`'s default on failure is to log it and run on
//! the CPU. Here asking for `cuda` or `tensorrt` where it cannot load is an error that names
//! what is missing ([`Error::ExecutionProvider`]); only `auto` falls back, and says why
//! ([`SessionPool::fallback`](super::SessionPool::fallback)).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use ort::ep::{self, ExecutionProvider as _, ExecutionProviderDispatch};

use super::runtime;
use crate::error::{Error, Result};

/// Where ONNX Runtime runs a model's sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU kernels (any build of the library).
    #[default]
    Cpu,
    /// An NVIDIA GPU through CUDA and cuDNN (the GPU build of the library).
    Cuda,
    /// An NVIDIA GPU through TensorRT, with CUDA for the nodes TensorRT does not take (the
    /// GPU build of the library and TensorRT 10's libraries).
    TensorRt,
    /// CUDA where it loads, else the CPU; the pool says which ran and why.
    Auto,
}

/// The provider used unless one is asked for.
pub const DEFAULT_EXECUTION_PROVIDER: ExecutionProvider = ExecutionProvider::Cpu;

/// Folder beside the runtime library whose CUDA and cuDNN libraries are loaded before a GPU
/// provider is registered (`tools/setup.sh --gpu` fills it from NVIDIA's PyPI wheels), so no
/// system CUDA and no `LD_LIBRARY_PATH` is needed.
pub const CUDA_LIBRARY_FOLDER: &str = "cuda";

/// The libraries preloaded from [`CUDA_LIBRARY_FOLDER`], dependencies first: what
/// `libonnxruntime_providers_cuda.so` of the pinned GPU build links (CUDA 13) and the cuDNN 9
/// it opens at run time. Missing ones are skipped: the dynamic linker may find them elsewhere,
/// and if not, ONNX Runtime's error names them.
const CUDA_LIBRARIES: [&str; 14] = [
    "libcudart.so.13",
    "libcublasLt.so.13",
    "libcublas.so.13",
    "libcurand.so.10",
    "libcufft.so.12",
    "libnvrtc.so.13",
    "libcudnn.so.9",
    "libcudnn_graph.so.9",
    "libcudnn_ops.so.9",
    "libcudnn_heuristic.so.9",
    "libcudnn_adv.so.9",
    "libcudnn_cnn.so.9",
    "libcudnn_engines_precompiled.so.9",
    "libcudnn_engines_runtime_compiled.so.9",
];

impl ExecutionProvider {
    /// Every provider, in the order the options list them.
    pub const ALL: [Self; 4] = [Self::Cpu, Self::Cuda, Self::TensorRt, Self::Auto];

    /// The name users write (`--execution-provider`, the element's property nick).
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::TensorRt => "tensorrt",
            Self::Auto => "auto",
        }
    }

    /// Whether sessions run on a GPU (or try to, for `auto`).
    pub fn wants_gpu(self) -> bool {
        self != Self::Cpu
    }

    /// ONNX Runtime's names of the providers registered for this choice, in priority order
    /// (empty for the CPU, which every session has last).
    pub fn onnx_runtime_names(self) -> &'static [&'static str] {
        match self {
            Self::Cpu => &[],
            Self::Cuda | Self::Auto => &[ep::CUDA::NAME],
            Self::TensorRt => &[ep::TensorRT::NAME, ep::CUDA::NAME],
        }
    }
}

impl std::fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExecutionProvider {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.name()).collect();
                Error::Settings(format!(
                    "unknown execution provider '{name}' (one of {})",
                    names.join(", ")
                ))
            })
    }
}

/// The `ort` registrations for `provider` (`Auto` asks for CUDA: the caller falls back), each
/// an error on failure rather than `ort`'s silent fall back to the CPU. Checks first that the
/// loaded library has them and loads the CUDA libraries beside it.
pub(super) fn registrations(provider: ExecutionProvider) -> Result<Vec<ExecutionProviderDispatch>> {
    let wanted = provider.onnx_runtime_names();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let available = available_providers()?;
    if let Some(missing) = wanted.iter().find(|n| !available.iter().any(|a| a == *n)) {
        return Err(not_built_in(provider, missing, &available));
    }
    preload_cuda_libraries();
    Ok(match provider {
        ExecutionProvider::Cpu => Vec::new(),
        ExecutionProvider::Cuda | ExecutionProvider::Auto => vec![cuda()],
        ExecutionProvider::TensorRt => {
            vec![ep::TensorRT::default().build().error_on_failure(), cuda()]
        }
    })
}

/// CUDA in full FP32: TensorFloat-32 matrix products (faster on Ampere and later) would round
/// the log-probs differently from the CPU's, and the words are meant to be the same on both.
fn cuda() -> ExecutionProviderDispatch {
    ep::CUDA::default()
        .with_tf32(false)
        .build()
        .error_on_failure()
}

/// The providers the loaded ONNX Runtime library was built with (ONNX Runtime's names).
pub fn available_providers() -> Result<Vec<String>> {
    runtime::environment()?;
    let api = ort::api();
    let mut names: *mut *mut std::ffi::c_char = std::ptr::null_mut();
    let mut count: std::ffi::c_int = 0;
    // SAFETY: the API fills `names` with `count` NUL-terminated strings that stay valid until
    // released below; a status it returns is released once read.
    unsafe {
        let status = (api.GetAvailableProviders)(&mut names, &mut count);
        if !status.0.is_null() {
            (api.ReleaseStatus)(status.0);
            return Err(Error::Runtime(
                "ONNX Runtime could not list its execution providers".to_string(),
            ));
        }
        let list = (0..usize::try_from(count).unwrap_or(0))
            .map(|i| {
                std::ffi::CStr::from_ptr(*names.add(i))
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let status = (api.ReleaseAvailableProviders)(names, count);
        if !status.0.is_null() {
            (api.ReleaseStatus)(status.0);
        }
        Ok(list)
    }
}

/// The library has no such provider compiled in: the CPU-only build.
fn not_built_in(provider: ExecutionProvider, missing: &str, available: &[String]) -> Error {
    let library = runtime::loaded_library().map_or_else(
        || "the ONNX Runtime library".to_string(),
        |p| p.display().to_string(),
    );
    Error::ExecutionProvider {
        provider: provider.name(),
        detail: format!(
            "{library} is built without {missing} (its providers: {}); run tools/setup.sh --gpu \
             to install the GPU build of ONNX Runtime and point {} at the library it prints",
            available.join(", "),
            runtime::LIBRARY_VARIABLE
        ),
    }
}

/// The folder whose CUDA libraries are preloaded: [`CUDA_LIBRARY_FOLDER`] beside the loaded
/// runtime library.
pub fn cuda_library_dir() -> Option<PathBuf> {
    runtime::loaded_library()
        .and_then(Path::parent)
        .map(|dir| dir.join(CUDA_LIBRARY_FOLDER))
}

/// Loads the CUDA and cuDNN libraries found in [`cuda_library_dir`], so that ONNX Runtime's
/// CUDA provider finds them by name. Once per process; one that fails to load is left for
/// ONNX Runtime's own search and error.
fn preload_cuda_libraries() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(dir) = cuda_library_dir() else {
            return;
        };
        for name in CUDA_LIBRARIES {
            let path = dir.join(name);
            if path.is_file() {
                let _ = ort::util::preload_dylib(&path);
            }
        }
    });
}

/// Why a session with `provider` registered could not be created, in words that say what to
/// do, when ONNX Runtime's message is about the provider (a library it could not load, no
/// GPU, a CUDA error) rather than the model.
pub(super) fn session_failure(provider: ExecutionProvider, message: &str) -> Option<Error> {
    const SIGNS: [&str; 8] = [
        "cuda",
        "cudnn",
        "cublas",
        "tensorrt",
        "nvinfer",
        "provider",
        "libonnxruntime_providers",
        "gpu",
    ];
    let lower = message.to_ascii_lowercase();
    SIGNS
        .iter()
        .any(|sign| lower.contains(sign))
        .then(|| registration_failure(provider, message))
}

/// A provider the library has but could not start: usually a CUDA or cuDNN library the
/// dynamic linker cannot find (ONNX Runtime's message names it), or no usable GPU.
pub(super) fn registration_failure(provider: ExecutionProvider, message: &str) -> Error {
    let searched = cuda_library_dir().map_or_else(String::new, |dir| {
        format!(
            " (searched {} first, then the dynamic linker's path)",
            dir.display()
        )
    });
    let libraries = match provider {
        ExecutionProvider::TensorRt => "CUDA 13, cuDNN 9 and TensorRT 10",
        _ => "CUDA 13 and cuDNN 9",
    };
    // ONNX Runtime's messages end in a newline.
    let message = message.trim_end().trim_end_matches('.');
    Error::ExecutionProvider {
        provider: provider.name(),
        detail: format!(
            "ONNX Runtime could not start it: {message}. It needs a GPU with NVIDIA's driver \
             (libcuda.so.1) and the {libraries} libraries{searched}: tools/setup.sh --gpu \
             installs CUDA's and cuDNN's from PyPI; or ask for execution provider cpu, or auto \
             to fall back to the CPU"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for provider in ExecutionProvider::ALL {
            assert_eq!(
                provider.name().parse::<ExecutionProvider>().unwrap(),
                provider
            );
            assert_eq!(provider.to_string(), provider.name());
        }
        assert_eq!(
            " CUDA ".parse::<ExecutionProvider>().unwrap(),
            ExecutionProvider::Cuda
        );
        let error = "gpu".parse::<ExecutionProvider>().unwrap_err();
        assert!(matches!(error, Error::Settings(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "unknown execution provider 'gpu' (one of cpu, cuda, tensorrt, auto)"
        );
        assert_eq!(ExecutionProvider::default(), DEFAULT_EXECUTION_PROVIDER);
        assert_eq!(DEFAULT_EXECUTION_PROVIDER, ExecutionProvider::Cpu);
    }

    #[test]
    fn gpu_choices_register_cuda() {
        assert!(ExecutionProvider::Cpu.onnx_runtime_names().is_empty());
        assert!(!ExecutionProvider::Cpu.wants_gpu());
        for provider in [ExecutionProvider::Cuda, ExecutionProvider::Auto] {
            assert_eq!(provider.onnx_runtime_names(), ["CUDAExecutionProvider"]);
            assert!(provider.wants_gpu());
        }
        assert_eq!(
            ExecutionProvider::TensorRt.onnx_runtime_names(),
            ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
        );
    }

    /// Only messages about the provider are reported as its failure; a broken model stays a
    /// model error.
    #[test]
    fn session_failures_are_told_apart() {
        let missing = "Failed to load library libonnxruntime_providers_cuda.so with error: \
                       libcublasLt.so.13: cannot open shared object file";
        let error = session_failure(ExecutionProvider::Cuda, missing).unwrap();
        assert!(matches!(
            error,
            Error::ExecutionProvider {
                provider: "cuda",
                ..
            }
        ));
        let text = error.to_string();
        assert!(text.starts_with("execution provider cuda: "), "{text}");
        assert!(text.contains("libcublasLt.so.13"), "{text}");
        assert!(text.contains("tools/setup.sh --gpu"), "{text}");
        let no_device = "CUDA failure 100: no CUDA-capable device is detected";
        assert!(session_failure(ExecutionProvider::Cuda, no_device).is_some());
        let broken = "Protobuf parsing failed.";
        assert!(session_failure(ExecutionProvider::Cuda, broken).is_none());
    }
}
