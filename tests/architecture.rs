//! The house rules, checked on the sources of every library crate: no two
//! files import each other, and no room (a top-level module) uses a room
//! listed after it in the crate's order (the order `docs/architecture.md`
//! opens with). A path counts when a `use` names it or code spells it
//! (`crate::`, `super::`, `self::` or a module the file declares); a
//! parent's `pub use` of its children (a facade) does not, and is followed
//! to where the item lives. Test modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each crate's source folder and its rooms, lowest first.
const CRATES: [(&str, &[&str]); 4] = [
    (
        "bayeux/src",
        &[
            "clock",
            "id",
            "channel",
            "error",
            "config",
            "message",
            "session",
            "request",
            "stats",
            "client",
            "subscriptions",
            "security",
            "ext",
            "relay",
            "server",
            "transport",
        ],
    ),
    ("push/src", &["format", "target", "providers", "dispatcher"]),
    (
        "channels/src",
        &[
            "id",
            "password",
            "store",
            "storage",
            "service",
            "chat",
            "notification",
            "callback",
        ],
    ),
    (
        "src",
        &[
            "wire", "store", "cluster", "config", "observe", "comet", "api", "pages", "app",
        ],
    ),
];

type ModPath = Vec<String>;

/// One source file: its module path and what it says.
struct File {
    path: PathBuf,
    module: ModPath,
    /// Paths it uses, absolute from the crate root.
    uses: Vec<ModPath>,
    /// `pub use` re-exports: exported name to absolute path.
    exports: BTreeMap<String, ModPath>,
}

#[test]
fn no_two_files_import_each_other_and_rooms_only_look_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for (dir, rooms) in CRATES {
        let files = read_crate(&root.join(dir));
        let edges = edges(&files);
        let name = |i: usize| name_of(&files[i], root);
        for (&from, targets) in &edges {
            for &to in targets {
                if from < to && edges.get(&to).is_some_and(|back| back.contains(&from)) {
                    problems.push(format!("{} and {} import each other", name(from), name(to)));
                }
                let rank = |i: usize| {
                    let room = files[i].module.first()?;
                    rooms.iter().position(|r| r == room)
                };
                match (rank(from), rank(to)) {
                    (Some(a), Some(b)) if b > a => problems.push(format!(
                        "{} (room {}) uses {} (room {}), a room above it",
                        name(from),
                        rooms[a],
                        name(to),
                        rooms[b]
                    )),
                    _ => {}
                }
            }
        }
        for file in &files {
            if let Some(room) = file.module.first() {
                if !rooms.contains(&room.as_str()) {
                    problems.push(format!(
                        "{}: room {room} is in no order",
                        name_of(file, root)
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The resolver itself, on a small crate written out here.
#[test]
fn the_checker_sees_uses_inline_paths_and_facades() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod a;\npub mod b;\n");
    write(
        "a/mod.rs",
        "mod x;\nmod y;\npub use self::y::Y;\npub struct A;\n",
    );
    write(
        "a/x.rs",
        "use super::{A, Y};\n// crate::b::B in a comment\n",
    );
    write(
        "a/y.rs",
        "pub struct Y;\nfn f() { let s = \"crate::b\"; crate::b::B::new(); }\n",
    );
    write(
        "b.rs",
        "pub struct B;\nuse crate::a::A;\n#[cfg(test)]\nmod tests { use crate::a::x; }\n",
    );
    let files = read_crate(dir.path());
    let edges = edges(&files);
    let id = |module: &[&str]| files.iter().position(|f| f.module == module).unwrap();
    let targets = |module: &[&str]| -> BTreeSet<usize> {
        edges.get(&id(module)).cloned().unwrap_or_default()
    };
    // `Y` through the facade is y.rs; `A` is defined in a/mod.rs.
    assert_eq!(
        targets(&["a", "x"]),
        BTreeSet::from([id(&["a"]), id(&["a", "y"])])
    );
    assert_eq!(targets(&["a", "y"]), BTreeSet::from([id(&["b"])]));
    assert_eq!(
        targets(&["b"]),
        BTreeSet::from([id(&["a"])]),
        "tests are left out"
    );
    assert!(targets(&["a"]).is_empty(), "a facade is no dependency");
}

fn name_of(file: &File, root: &Path) -> String {
    file.path
        .strip_prefix(root)
        .unwrap_or(&file.path)
        .display()
        .to_string()
}

/// Which file each file uses, by index, itself excepted.
fn edges(files: &[File]) -> BTreeMap<usize, BTreeSet<usize>> {
    let modules: BTreeMap<&ModPath, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (&f.module, i))
        .collect();
    let mut out: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for (i, file) in files.iter().enumerate() {
        for path in &file.uses {
            if let Some(target) = resolve(files, &modules, path, 0) {
                if target != i {
                    out.entry(i).or_default().insert(target);
                }
            }
        }
    }
    out
}

/// The file an absolute path lands in: the deepest module file it names,
/// or, for an item that file re-exports, the file the item comes from.
fn resolve(
    files: &[File],
    modules: &BTreeMap<&ModPath, usize>,
    path: &[String],
    depth: usize,
) -> Option<usize> {
    let mut found = *modules.get(&Vec::new())?;
    let mut prefix = Vec::new();
    for (n, segment) in path.iter().enumerate() {
        prefix.push(segment.clone());
        match modules.get(&prefix) {
            Some(&file) => found = file,
            None => {
                if let Some(target) = files[found].exports.get(segment) {
                    if depth < 8 {
                        let mut full = target.clone();
                        full.extend_from_slice(&path[n + 1..]);
                        return resolve(files, modules, &full, depth + 1);
                    }
                }
                break;
            }
        }
    }
    Some(found)
}

fn read_crate(dir: &Path) -> Vec<File> {
    let mut paths = Vec::new();
    collect(dir, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(dir).ok()?.to_path_buf();
            let module = module_of(&relative)?;
            let text = std::fs::read_to_string(&path).ok()?;
            Some(parse(path, module, &text))
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "bin") {
                collect(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `lib.rs` is the root, `a/mod.rs` and `a.rs` are `a`; `main.rs` (another
/// crate) and out-of-line test modules (`tests.rs`) are left out.
fn module_of(relative: &Path) -> Option<ModPath> {
    let mut parts: ModPath = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    match last.as_str() {
        "lib.rs" if parts.is_empty() => {}
        "main.rs" | "tests.rs" => return None,
        "mod.rs" => {}
        other => parts.push(other.strip_suffix(".rs")?.to_owned()),
    }
    Some(parts)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Colons,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other,
}

fn parse(path: PathBuf, module: ModPath, text: &str) -> File {
    let tokens = tokenize(&strip_tests(text));
    let children: BTreeSet<String> = tokens
        .windows(3)
        .filter_map(|w| match w {
            [Token::Ident(m), Token::Ident(name), Token::Semi] if m == "mod" => Some(name.clone()),
            _ => None,
        })
        .collect();
    let mut file = File {
        path,
        module,
        uses: Vec::new(),
        exports: BTreeMap::new(),
    };
    // The inline modules the cursor is in, with the depth they opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Token::Ident(m) if m == "mod" => {
                if let (Some(Token::Ident(name)), Some(Token::Open)) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Token::Ident(u) if u == "use" => {
                let public = i > 0 && is_visibility(&tokens[..i]);
                let end = tokens[i..]
                    .iter()
                    .position(|t| *t == Token::Semi)
                    .map_or(tokens.len(), |p| i + p);
                let here = within(&file.module, &inline);
                let mut trees = Vec::new();
                use_tree(&tokens[i + 1..end], Vec::new(), &mut trees);
                for (relative, alias) in trees {
                    let Some(absolute) = absolute(&here, &children, inline.is_empty(), &relative)
                    else {
                        continue;
                    };
                    if public {
                        if let Some(alias) = alias {
                            file.exports.insert(alias, absolute);
                        }
                    } else {
                        file.uses.push(absolute);
                    }
                }
                i = end;
                continue;
            }
            Token::Ident(first)
                if matches!(tokens.get(i + 1), Some(Token::Colons))
                    && !matches!(i.checked_sub(1).map(|p| &tokens[p]), Some(Token::Colons)) =>
            {
                let mut relative = vec![first.clone()];
                let mut j = i + 1;
                while let (Some(Token::Colons), Some(Token::Ident(next))) =
                    (tokens.get(j), tokens.get(j + 1))
                {
                    relative.push(next.clone());
                    j += 2;
                }
                let here = within(&file.module, &inline);
                if let Some(absolute) = absolute(&here, &children, inline.is_empty(), &relative) {
                    file.uses.push(absolute);
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    file
}

/// The module the cursor is in: the file's, and the inline ones open there.
fn within(module: &[String], inline: &[(String, usize)]) -> ModPath {
    let inline = inline.iter().map(|(m, _)| m.clone());
    module.iter().cloned().chain(inline).collect()
}

/// Whether the tokens before a `use` make it public (`pub`, `pub(crate)`).
fn is_visibility(before: &[Token]) -> bool {
    match before {
        [.., Token::Ident(p)] => p == "pub",
        [.., Token::Ident(p), Token::Other, Token::Ident(_), Token::Other] => p == "pub",
        _ => false,
    }
}

/// A path relative to the module `here` made absolute, if it is one of
/// this crate's: `crate::`, `super::`, `self::`, or a child module.
fn absolute(
    here: &[String],
    children: &BTreeSet<String>,
    at_file_level: bool,
    relative: &[String],
) -> Option<ModPath> {
    let (first, rest) = relative.split_first()?;
    let mut base: ModPath = match first.as_str() {
        "crate" => Vec::new(),
        "self" => here.to_vec(),
        "super" => here[..here.len().checked_sub(1)?].to_vec(),
        name if at_file_level && children.contains(name) => {
            let mut p = here.to_vec();
            p.push(name.to_owned());
            p
        }
        _ => return None,
    };
    let mut rest = rest;
    while let Some((next, tail)) = rest.split_first() {
        if next != "super" {
            break;
        }
        base.pop();
        rest = tail;
    }
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(base)
}

/// Expands a use tree into its paths, each with the name it binds.
fn use_tree(tokens: &[Token], prefix: ModPath, out: &mut Vec<(ModPath, Option<String>)>) {
    let mut path = prefix;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Ident(a) if a == "as" => {
                if let Some(Token::Ident(alias)) = tokens.get(i + 1) {
                    out.push((path.clone(), Some(alias.clone())));
                }
                return;
            }
            Token::Ident(name) => path.push(name.clone()),
            Token::Colons => {}
            Token::Star => {
                out.push((path.clone(), None));
                return;
            }
            Token::Open => {
                let mut depth = 0;
                let mut start = i + 1;
                for j in i..tokens.len() {
                    match tokens[j] {
                        Token::Open => depth += 1,
                        Token::Close => {
                            depth -= 1;
                            if depth == 0 {
                                use_tree(&tokens[start..j], path.clone(), out);
                                return;
                            }
                        }
                        Token::Comma if depth == 1 => {
                            use_tree(&tokens[start..j], path.clone(), out);
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                return;
            }
            _ => {}
        }
        i += 1;
    }
    if !path.is_empty() {
        let name = path.last().filter(|n| *n != "self").cloned();
        let name = name.or_else(|| path.iter().rev().nth(1).cloned());
        out.push((path, name));
    }
}

/// The file without its inline test modules (`#[cfg(test)] mod name {`
/// to the end of the block).
fn strip_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let opens_tests = line.trim() == "#[cfg(test)]"
            && lines.peek().is_some_and(|next| {
                let next = next.trim();
                next.starts_with("mod ") && next.contains('{')
            });
        if opens_tests {
            let mut depth = 0i32;
            for line in lines.by_ref() {
                depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
                if depth <= 0 && line.contains('}') {
                    break;
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Identifiers and the punctuation use trees and paths are made of;
/// comments, strings and characters are skipped.
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('#') || next == Some('"')) {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(Token::Ident("r".into()));
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A character ('a', '\n') or a lifetime ('a).
            if next == Some('\\') {
                // '\'', '\n', '\u{..}': skip the escaped character first.
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            i += 1;
            out.push(match c {
                ':' if next == Some(':') => {
                    i += 1;
                    Token::Colons
                }
                '{' => Token::Open,
                '}' => Token::Close,
                ',' => Token::Comma,
                ';' => Token::Semi,
                '*' => Token::Star,
                _ => Token::Other,
            });
        }
    }
    out
}
