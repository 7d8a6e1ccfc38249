//! Embeds the browser side into the binary: the official CometD JavaScript
//! client (npm `cometd`, pinned in `web/package-lock.json`) for the pages,
//! and the chat widget (`web/widget/`, bundled with that client into one
//! file by esbuild, also pinned there). When `web/node_modules` is missing
//! or incomplete, `npm ci` fetches it; without npm the binary still builds
//! and the pages (and the widget's URL) say what is missing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=web/package-lock.json");
    println!("cargo:rerun-if-changed=web/node_modules/cometd/package.json");
    println!("cargo:rerun-if-changed=web/widget");
    let modules = Path::new("web/node_modules");
    if !modules.join("cometd/cometd.js").exists() || esbuild(modules).is_none() {
        let status = Command::new("npm")
            .args([
                "ci",
                "--prefix",
                "web",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            println!("cargo:warning=could not install web/node_modules (npm ci --prefix web); the pages will say so");
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let mut code = cometd_files(&modules.join("cometd"));
    let widget = bundle_widget(modules, &out.join("gmshub-chat.js"));
    let _ = writeln!(
        code,
        "pub static WIDGET_JS: &str = {};",
        match widget {
            Some(path) => format!("include_str!({:?})", path.display().to_string()),
            None => "\"\"".to_owned(),
        }
    );
    std::fs::write(out.join("web_assets.rs"), code).expect("write web_assets.rs");
}

/// `COMETD_JS`: the client's modules, by file name.
fn cometd_files(dir: &Path) -> String {
    let mut code = String::from("pub static COMETD_JS: &[(&str, &[u8])] = &[\n");
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "js"))
            .collect();
        files.sort();
        for path in files {
            let abs = std::fs::canonicalize(&path).expect("readable path");
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("file name");
            let _ = writeln!(
                code,
                "    ({name:?}, include_bytes!({:?})),",
                abs.display().to_string()
            );
        }
    }
    code.push_str("];\n");
    code
}

/// esbuild's native binary (no Node needed to run it).
fn esbuild(modules: &Path) -> Option<PathBuf> {
    let bin = modules.join("esbuild/bin/esbuild");
    let ok = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    ok(&bin).then_some(bin)
}

/// Bundles `web/widget/index.js` and the CometD client into one classic
/// script at `out`; `None` (and a warning) when esbuild cannot.
fn bundle_widget(modules: &Path, out: &Path) -> Option<PathBuf> {
    let esbuild = esbuild(modules)?;
    let version = std::fs::read_to_string(modules.join("cometd/package.json"))
        .ok()
        .and_then(|p| {
            p.split("\"version\"")
                .nth(1)?
                .split('"')
                .nth(1)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let banner = format!(
        "--banner:js=/*! gmshub chat widget v1 (Apache-2.0). Includes the CometD JavaScript \
         client {version} (https://cometd.org, Apache-2.0). */"
    );
    let status = Command::new(esbuild)
        .arg("web/widget/index.js")
        .args([
            "--bundle",
            "--format=iife",
            "--target=es2022",
            "--minify",
            "--legal-comments=none",
            "--log-level=warning",
        ])
        .arg(banner)
        .arg(format!("--outfile={}", out.display()))
        .status();
    if matches!(status, Ok(s) if s.success()) {
        Some(out.to_owned())
    } else {
        println!("cargo:warning=esbuild could not bundle web/widget; /widget/v1/gmshub-chat.js will say so");
        None
    }
}
