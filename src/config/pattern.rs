//! The URI patterns of GMS's path-keyed options (`[port_restrictions]`,
//! the guide's header rules): a trailing `*` matches any rest of the path
//! (`/genesys/1/storage/*`, or the guide's `/genesys/1/storage*`);
//! otherwise the exact path.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    path: String,
    prefix: bool,
}

impl PathPattern {
    pub fn new(pattern: &str) -> Self {
        match pattern.strip_suffix('*') {
            Some(prefix) => Self {
                path: prefix.to_owned(),
                prefix: true,
            },
            None => Self {
                path: pattern.to_owned(),
                prefix: false,
            },
        }
    }

    pub fn matches(&self, path: &str) -> bool {
        if self.prefix {
            path.starts_with(&self.path)
        } else {
            path == self.path
        }
    }

    /// More specific first: longer, and at one length the exact path.
    pub fn specificity(&self) -> (usize, bool) {
        (self.path.len(), !self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::PathPattern;

    #[test]
    fn a_star_matches_any_rest_and_otherwise_the_path_is_exact() {
        let prefix = PathPattern::new("/genesys/1/storage*");
        assert!(prefix.matches("/genesys/1/storage") && prefix.matches("/genesys/1/storage/x"));
        let exact = PathPattern::new("/genesys/1/node");
        assert!(exact.matches("/genesys/1/node") && !exact.matches("/genesys/1/node/x"));
        assert!(exact.specificity() > PathPattern::new("/genesys/1/nod*").specificity());
    }
}
