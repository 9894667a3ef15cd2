//! `switchboard check PLUGIN.wasm` (guest-sdk/README.md, "Check it") lists what
//! a component imports and what each does here, and a component that
//! imports what this host does not provide is refused, by `check` and by
//! `serve` alike, with what to do about it in front of wasmtime's words.
//!
//! The components that import too much are made here with wasm-encoder:
//! nothing but an import and an empty `switchboard:plugin/guest` export,
//! which is as far as a load gets before linking.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use switchboard_e2e::server::binary_path;
use switchboard_e2e::{Server, chains};
use wasm_encoder::{
    Component, ComponentExportKind, ComponentExportSection, ComponentImportSection,
    ComponentInstanceSection, ComponentTypeRef, ComponentTypeSection, ComponentValType,
    InstanceType,
};

/// A component importing the instance `import` (one function, `f`) and
/// exporting an empty `switchboard:plugin/guest@0.3.0`.
fn importing(import: &str) -> Vec<u8> {
    let mut instance = InstanceType::new();
    let no_params: [(&str, ComponentValType); 0] = [];
    instance.ty().function().params(no_params).result(None);
    instance.export("f", ComponentTypeRef::Func(0));
    let mut types = ComponentTypeSection::new();
    types.instance(&instance);
    let mut imports = ComponentImportSection::new();
    imports.import(import, ComponentTypeRef::Instance(0));
    let mut instances = ComponentInstanceSection::new();
    instances.export_items::<&str, _>([]);
    let mut exports = ComponentExportSection::new();
    // Instance 0 is the import, 1 the empty one.
    exports.export(
        "switchboard:plugin/guest@0.3.0",
        ComponentExportKind::Instance,
        1,
        None,
    );
    let mut component = Component::new();
    component
        .section(&types)
        .section(&imports)
        .section(&instances)
        .section(&exports);
    component.finish()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the component");
    path
}

async fn check(plugin: &Path) -> Output {
    tokio::process::Command::new(binary_path())
        .arg("check")
        .arg(plugin)
        .output()
        .await
        .expect("run switchboard check")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn check_lists_the_imports_and_warns_about_what_traps() {
    let output = check(Path::new(chains::NOISY_WASM)).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let line = |interface: &str| -> &str {
        stdout
            .lines()
            .find(|line| line.trim_start().starts_with(interface))
            .unwrap_or_else(|| panic!("no import line for {interface}:\n{stdout}"))
    };
    assert!(line("switchboard:plugin/host@0.3.0").contains("host interface"));
    assert!(line("wasi:cli/stdout@").contains("to the server's log"));
    let poll = line("wasi:io/poll@");
    assert!(
        poll.contains("warning, if used: waiting on a pollable traps"),
        "{poll}"
    );
    assert!(stdout.contains("plugin    noisy"), "{stdout}");
}

#[tokio::test]
async fn a_component_importing_wasi_http_is_told_the_jco_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugin = write(dir.path(), "js.wasm", &importing("wasi:http/types@0.2.3"));

    let output = check(&plugin).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("wasi:http/types@0.2.3  error: this host does not provide it"),
        "{stdout}"
    );
    assert!(
        stderr.contains("rebuild with `jco componentize ... -d http -d fetch-event`"),
        "{stderr}"
    );
    // wasmtime's own words are still there, after the fix.
    assert!(
        stderr.contains("matching implementation was not found"),
        "{stderr}"
    );

    // A server given it refuses to start, saying the same.
    let config = chains::with_extra("", &[chains::from_file("js", plugin.to_str().unwrap())]);
    let (status, log) = Server::builder(&config)
        .start_expecting_failure(Duration::from_secs(30))
        .await;
    assert!(!status.success());
    assert!(log.contains("-d http -d fetch-event"), "{log}");
}

#[tokio::test]
async fn any_other_missing_import_is_named_with_remove_the_import() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugin = write(
        dir.path(),
        "kv.wasm",
        &importing("wasi:keyvalue/store@0.2.0-draft"),
    );
    let output = check(&plugin).await;
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(
            "the host does not provide `wasi:keyvalue/store@0.2.0-draft`; remove the import"
        ),
        "{stderr}"
    );
}

/// `switchboard compile` at deploy time: the server started on its cache
/// directory loads the component without compiling it (and compiles the
/// built-in plugins it had not been given, which shows the log would say).
#[tokio::test]
async fn a_compiled_plugin_loads_without_compiling() {
    let cache = tempfile::tempdir().expect("temp dir");
    let output = tokio::process::Command::new(binary_path())
        .args(["compile", chains::NOISY_WASM, "-o"])
        .arg(cache.path())
        .output()
        .await
        .expect("run switchboard compile");
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let artifact = stdout
        .lines()
        .find_map(|line| line.strip_prefix("artifact  "))
        .unwrap_or_else(|| panic!("no artifact line:\n{stdout}"));
    assert!(Path::new(artifact).is_file(), "{artifact}");

    let noisy = chains::with_config(
        chains::from_file("loud", chains::NOISY_WASM),
        "name = \"loud\"",
    );
    let preamble = format!("[plugin_cache]\ndir = {:?}\n", cache.path());
    let server = Server::start(&chains::with_extra(&preamble, &[noisy])).await;
    let compiled = |log: &str, hash: &str| {
        log.lines().any(|line| {
            line.contains("compiled a plugin that was not in the compile cache")
                && line.contains(hash)
        })
    };
    let log = server.log();
    // The built-ins were not in this fresh directory: the log says so.
    assert!(compiled(&log, ""), "no compile was logged:\n{log}");
    let noisy = sha256_hex(&std::fs::read(chains::NOISY_WASM).expect("read noisy"));
    assert!(!compiled(&log, &noisy), "noisy was compiled again:\n{log}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
