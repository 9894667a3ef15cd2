//! `switchboard new NAME --lang rust|js|ts|python`: a plugin project that builds to
//! a component with one command and passes `switchboard check`.
//!
//! The templates are the files under `templates/<lang>/`, embedded in the
//! binary, with `{{name}}`, `{{crate}}` (the name as Cargo writes it in the
//! component's file name), `{{lang}}`, `{{ext}}` and the SDK's path filled
//! in; every project also gets a copy of `wit/switchboard.wit`. A template
//! file named `gitignore` is written as `.gitignore` (so that it does not
//! apply inside this repository).
//!
//! The SDKs are not published to a registry: a project depends on the one
//! in a Switchboard checkout by path, by default the checkout this binary
//! was built from.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    Js,
    Ts,
    Python,
}

/// One template: where the file goes in the project, and its text.
type Template = &'static [(&'static str, &'static str)];

macro_rules! template {
    ($lang:literal: $($file:literal),+ $(,)?) => {
        &[$(($file, include_str!(concat!("../../templates/", $lang, "/", $file)))),+]
    };
}

const RUST: Template =
    template!("rust": "Cargo.toml", "README.md", "gitignore", "src/lib.rs", "src/tests.rs");
const JS: Template = template!("js":
    "package.json", "README.md", "gitignore", "src/plugin.js", "src/component.js", "test/plugin.test.js",
);
const TS: Template = template!("ts":
    "package.json", "tsconfig.json", "eslint.config.js", "README.md", "gitignore",
    "src/plugin.ts", "src/component.ts", "test/plugin.test.ts",
);
const PYTHON: Template = template!("python":
    "requirements.txt", "build.py", "README.md", "gitignore", "plugin.py", "app.py",
    "tests/test_plugin.py",
);

const WIT: &str = include_str!("../../wit/switchboard.wit");

/// The checkout this binary was built from: its SDKs are the default.
const CHECKOUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The longest name: `NAME:echo`, the sample's event, must stay within the
/// 64 characters of an event name, with room for the author's own events.
const MAX_NAME: usize = 40;

/// Creates the project `name` in `parent`, for `lang`, depending on the SDK
/// of the Switchboard checkout `switchboard` (default: the one this binary
/// was built from). Returns the project's directory.
pub fn create(
    name: &str,
    lang: Lang,
    parent: &Path,
    switchboard: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        bail!(
            "{} already exists: choose another name or remove it",
            dir.display()
        );
    }
    let sdk = sdk_path(lang, switchboard)?;
    let (template, ext) = match lang {
        Lang::Rust => (RUST, "rs"),
        Lang::Js => (JS, "js"),
        Lang::Ts => (TS, "ts"),
        Lang::Python => (PYTHON, "py"),
    };
    let lang_name = match lang {
        Lang::Rust => "rust",
        Lang::Js => "js",
        Lang::Ts => "ts",
        Lang::Python => "python",
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{lang}}", lang_name)
            .replace("{{ext}}", ext)
            .replace("{{sdk_rust}}", &sdk)
            .replace("{{sdk_js}}", &sdk)
            .replace("{{sdk_py}}", &sdk)
    };
    let files = template
        .iter()
        .map(|(path, text)| {
            let path = if *path == "gitignore" {
                ".gitignore"
            } else {
                path
            };
            (path, fill(text))
        })
        .chain([("wit/switchboard.wit", WIT.to_owned())]);
    // Created here, so that a racing `new` of the same name fails rather
    // than writes into the other's project.
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// A name that is a valid npm package name and Cargo package name, and
/// makes valid event names: a lowercase ASCII letter, then lowercase
/// letters, digits and single hyphens, not ending in one.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !valid {
        bail!(
            "`{name}` is not a valid plugin name: use 1 to {MAX_NAME} characters, a lowercase letter \
             first, then lowercase letters, digits and single hyphens (e.g. `room-policy`)"
        );
    }
    Ok(())
}

/// The absolute path of the SDK `lang` needs, in a form the project's
/// manifest can hold as it is.
fn sdk_path(lang: Lang, switchboard: Option<&Path>) -> anyhow::Result<String> {
    let checkout = switchboard.unwrap_or(Path::new(CHECKOUT));
    let sdk = checkout.join(match lang {
        Lang::Rust => "guest-sdk",
        Lang::Js | Lang::Ts => "guest-sdk-js",
        Lang::Python => "guest-sdk-py",
    });
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "no SDK at {}: pass --switchboard with the path of a Switchboard checkout",
            sdk.display()
        )
    })?;
    let text = sdk
        .to_str()
        .filter(|text| !text.contains(['"', '\\']))
        .with_context(|| {
            format!(
                "the SDK's path {} cannot be written in a manifest as it is",
                sdk.display()
            )
        })?;
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_of(dir: &Path) -> Vec<String> {
        let mut files = Vec::new();
        let mut folders = vec![dir.to_path_buf()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    let relative = path.strip_prefix(dir).unwrap();
                    files.push(relative.to_str().unwrap().to_owned());
                }
            }
        }
        files.sort();
        files
    }

    #[test]
    fn every_language_gets_its_template_filled_in_and_the_wit() {
        let parent = tempfile::tempdir().unwrap();
        for (lang, name, manifest) in [
            (Lang::Rust, "room-policy", "Cargo.toml"),
            (Lang::Js, "js-policy", "package.json"),
            (Lang::Ts, "ts-policy", "package.json"),
            // Python has no manifest with the name: the plugin names itself.
            (Lang::Python, "py-policy", "plugin.py"),
        ] {
            let dir = create(name, lang, parent.path(), None).unwrap();
            assert_eq!(dir, parent.path().join(name));
            let files = files_of(&dir);
            assert!(files.contains(&".gitignore".to_owned()), "{files:?}");
            assert!(!files.contains(&"gitignore".to_owned()), "{files:?}");
            assert_eq!(
                std::fs::read_to_string(dir.join("wit/switchboard.wit")).unwrap(),
                WIT
            );
            for file in &files {
                let text = std::fs::read_to_string(dir.join(file)).unwrap();
                assert!(!text.contains("{{"), "{name}/{file} has a placeholder left");
            }
            let manifest = std::fs::read_to_string(dir.join(manifest)).unwrap();
            assert!(manifest.contains(&format!("\"{name}\"")), "{manifest}");
        }
        let cargo = std::fs::read_to_string(parent.path().join("room-policy/README.md")).unwrap();
        assert!(cargo.contains("release/room_policy.wasm"), "{cargo}");
    }

    #[test]
    fn the_sdk_path_is_the_checkout_s() {
        let parent = tempfile::tempdir().unwrap();
        let dir = create("p", Lang::Ts, parent.path(), None).unwrap();
        let manifest = std::fs::read_to_string(dir.join("package.json")).unwrap();
        let sdk = Path::new(CHECKOUT)
            .join("guest-sdk-js")
            .canonicalize()
            .unwrap();
        assert!(
            manifest.contains(&format!("\"file:{}\"", sdk.display())),
            "{manifest}"
        );
    }

    #[test]
    fn the_python_project_builds_and_tests_with_the_checkout_s_sdk() {
        let parent = tempfile::tempdir().unwrap();
        let dir = create("py-policy", Lang::Python, parent.path(), None).unwrap();
        let build = std::fs::read_to_string(dir.join("build.py")).unwrap();
        let sdk = Path::new(CHECKOUT)
            .join("guest-sdk-py")
            .canonicalize()
            .unwrap();
        assert!(
            build.contains(&format!("SDK = \"{}\"", sdk.display())),
            "{build}"
        );
        assert!(build.contains("dist\" / \"py-policy.wasm"), "{build}");
        // The sample's unit tests pass against the SDK: natively, in well
        // under a second, with nothing to install (the build itself
        // installs componentize-py and takes tens of seconds: see
        // guest-sdk-py/README.md).
        let run = std::process::Command::new("python3")
            .args(["build.py", "test"])
            .current_dir(&dir)
            .output()
            .expect("python3 runs");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{stderr}");
        assert!(stderr.contains("Ran 2 tests"), "{stderr}");
    }

    #[test]
    fn an_existing_directory_is_never_written_into() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("taken");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("keep.txt"), "mine").unwrap();
        let error = create("taken", Lang::Js, parent.path(), None).unwrap_err();
        assert!(error.to_string().contains("already exists"), "{error}");
        assert_eq!(files_of(&dir), ["keep.txt"]);
    }

    #[test]
    fn names_are_package_names() {
        for good in ["a", "chat", "room-policy", "v2", &"a".repeat(MAX_NAME)] {
            check_name(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "Chat",
            "2fa",
            "-x",
            "x-",
            "a--b",
            "a_b",
            "a.b",
            "a b",
            "../up",
            "é",
            &"a".repeat(MAX_NAME + 1),
        ] {
            let error = check_name(bad).unwrap_err();
            assert!(
                error.to_string().contains("not a valid plugin name"),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_checkout_without_the_sdk_is_an_error_that_says_what_to_pass() {
        let parent = tempfile::tempdir().unwrap();
        let error = create("p", Lang::Rust, parent.path(), Some(parent.path())).unwrap_err();
        assert!(error.to_string().contains("--switchboard"), "{error}");
        assert!(!parent.path().join("p").exists());
    }
}
