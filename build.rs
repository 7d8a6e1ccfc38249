//! Embeds the official CometD JavaScript client (npm `cometd`, pinned in
//! `web/package-lock.json`) into the binary for the demo page at `/`.
//! When `web/node_modules` is missing, `npm ci` fetches it; without npm the
//! binary still builds and the page explains how to get the client.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=web/package-lock.json");
    println!("cargo:rerun-if-changed=web/node_modules/cometd/package.json");
    let dir = Path::new("web/node_modules/cometd");
    if !dir.join("cometd.js").exists() {
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
            println!("cargo:warning=could not install web/node_modules (npm ci --prefix web); the page at / will say so");
        }
    }
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
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("web_assets.rs");
    std::fs::write(out, code).expect("write web_assets.rs");
}
