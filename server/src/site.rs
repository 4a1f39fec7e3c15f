//! The console's site settings (`Leptos.toml`): output name, site root, pkg dir, address.
//!
//! Found at `$GOLDEN_PATH_LEPTOS_TOML`, else `./Leptos.toml`, else the copy built into the
//! binary (the workspace's own file), so the binary runs from anywhere. `LEPTOS_*` variables
//! override single keys (`LEPTOS_SITE_ADDR=127.0.0.1:0`). A relative `site-root` is taken
//! relative to the file's directory (the current directory for the built-in copy).

use std::path::{Path, PathBuf};

use anyhow::Context;
use leptos_config::LeptosOptions;

/// Names the Leptos.toml to read.
pub const ENV_LEPTOS_TOML: &str = "GOLDEN_PATH_LEPTOS_TOML";

/// The workspace's Leptos.toml, used when no file is found.
const BUILT_IN: &str = include_str!("../../Leptos.toml");

/// Load the site settings as described in the module docs.
pub fn load() -> anyhow::Result<LeptosOptions> {
    let explicit = std::env::var_os(ENV_LEPTOS_TOML).map(PathBuf::from);
    let site_root_from_env = std::env::var_os("LEPTOS_SITE_ROOT").is_some();
    load_from(
        explicit.as_deref(),
        Path::new("Leptos.toml"),
        site_root_from_env,
    )
}

fn load_from(
    explicit: Option<&Path>,
    default_path: &Path,
    site_root_from_env: bool,
) -> anyhow::Result<LeptosOptions> {
    let (text, base) = match explicit {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {ENV_LEPTOS_TOML}={}", path.display()))?,
            parent_dir(path),
        ),
        None => match std::fs::read_to_string(default_path) {
            Ok(text) => (text, parent_dir(default_path)),
            Err(_) => (BUILT_IN.to_string(), PathBuf::new()),
        },
    };
    let mut options = leptos_config::get_config_from_str(&text)
        .map_err(|e| anyhow::anyhow!("Leptos.toml: {e}"))?;
    let root = Path::new(&*options.site_root);
    if !site_root_from_env && root.is_relative() && !base.as_os_str().is_empty() {
        options.site_root = base.join(root).to_string_lossy().into_owned().into();
    }
    Ok(options)
}

fn parent_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_settings_match_the_build_script() {
        let dir = tempfile::tempdir().unwrap();
        let options = load_from(None, &dir.path().join("missing.toml"), false).unwrap();
        assert_eq!(&*options.output_name, "console");
        assert_eq!(&*options.site_root, "target/site");
        assert_eq!(&*options.site_pkg_dir, "pkg");
    }

    #[test]
    fn an_explicit_file_anchors_a_relative_site_root() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("Leptos.toml");
        std::fs::write(
            &file,
            "[package.metadata.leptos]\noutput-name = \"x\"\nsite-root = \"site\"\nsite-addr = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let options = load_from(Some(&file), Path::new("unused"), false).unwrap();
        assert_eq!(&*options.output_name, "x");
        assert_eq!(Path::new(&*options.site_root), dir.path().join("site"));
        assert_eq!(options.site_addr.port(), 0);
        assert!(load_from(Some(&dir.path().join("nope.toml")), Path::new("x"), false).is_err());
    }
}
