//! Per-event formatting: the OS options (`apple.*`, `fcm.title`,
//! `fcm.body`) of the sections `[push.provider.NAME.event.TAG]` (one
//! provider, one event) and `[push.provider.event.TAG]` (every provider),
//! where TAG is the event's tag or any dotted prefix of it (`chat` covers
//! `chat.newagentmessage`), and the bare `...event` sections cover every
//! event. The most specific section that sets an option wins: the
//! provider's own event sections before the shared ones, a longer tag
//! before a shorter one; the provider section's own value comes last.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Formats {
    /// Section name → its options.
    sections: HashMap<String, HashMap<String, String>>,
    /// `[push] localizationFileLocation`: language → event tag → text.
    localized: HashMap<String, HashMap<String, String>>,
}

impl Formats {
    /// Whether a configuration section named `name` is an event format's.
    pub fn is_event_section(name: &str) -> bool {
        name.starts_with("push.provider.") && name.contains("event")
    }

    /// Keeps the event sections among `sections` (name → options).
    pub fn new<'a>(sections: impl IntoIterator<Item = (&'a str, HashMap<String, String>)>) -> Self {
        Self {
            sections: sections
                .into_iter()
                .filter(|(name, _)| Self::is_event_section(name))
                .map(|(name, options)| (name.to_owned(), options))
                .collect(),
            localized: HashMap::new(),
        }
    }

    /// Adds the localized texts (`[push] localizationFileLocation`): one
    /// section per language (`[fr]`, `[pt-BR]`), an event tag (or a dotted
    /// prefix of one) per key, the text to show as its value.
    pub fn with_localized(mut self, by_language: HashMap<String, HashMap<String, String>>) -> Self {
        self.localized = by_language
            .into_iter()
            .map(|(lang, texts)| (lang.to_ascii_lowercase(), texts))
            .collect();
        self
    }

    /// The text for an event of `tag` in `language` (`fr-CA` falls back to
    /// `fr`), by the longest matching tag prefix.
    pub fn localized(&self, language: &str, tag: &str) -> Option<&str> {
        let language = language.to_ascii_lowercase();
        let base = language.split(['-', '_']).next().unwrap_or("").to_owned();
        for lang in [language, base] {
            let Some(texts) = self.localized.get(&lang) else {
                continue;
            };
            let mut key = tag;
            loop {
                if let Some(t) = texts.get(key) {
                    return Some(t);
                }
                match key.rfind('.') {
                    Some(i) => key = &key[..i],
                    None => break,
                }
            }
        }
        None
    }

    /// The value of `option` for an event of `tag` sent by `provider`
    /// (empty: the default provider), if an event section sets it.
    pub fn lookup(&self, provider: &str, tag: &str, option: &str) -> Option<&str> {
        if self.sections.is_empty() {
            return None;
        }
        let mut prefixes: Vec<&str> = tag.match_indices('.').map(|(i, _)| &tag[..i]).collect();
        prefixes.push(tag);
        prefixes.reverse();
        let scopes = if provider.is_empty() {
            vec!["push.provider.event".to_owned()]
        } else {
            vec![
                format!("push.provider.{provider}.event"),
                "push.provider.event".to_owned(),
            ]
        };
        for scope in &scopes {
            for name in prefixes
                .iter()
                .map(|p| format!("{scope}.{p}"))
                .chain([scope.clone()])
            {
                if let Some(v) = self.sections.get(&name).and_then(|s| s.get(option)) {
                    return Some(v);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_most_specific_section_wins() {
        let f = Formats::new([
            (
                "push.provider.event",
                section(&[("apple.title", "all"), ("apple.sound", "default")]),
            ),
            (
                "push.provider.event.chat",
                section(&[("apple.title", "chat")]),
            ),
            (
                "push.provider.event.chat.newagentmessage",
                section(&[("apple.alertMessage.loc-key", "CHAT_NEW_AGENT_MESSAGE")]),
            ),
            (
                "push.provider.acme.event.chat",
                section(&[("apple.title", "acme chat")]),
            ),
            ("push", section(&[("apple.title", "not an event section")])),
        ]);
        assert_eq!(
            f.lookup("", "chat.newagentmessage", "apple.title"),
            Some("chat")
        );
        assert_eq!(
            f.lookup("", "chat.newagentmessage", "apple.alertMessage.loc-key"),
            Some("CHAT_NEW_AGENT_MESSAGE")
        );
        assert_eq!(
            f.lookup("", "chat.other", "apple.alertMessage.loc-key"),
            None
        );
        assert_eq!(f.lookup("", "ors.callback", "apple.title"), Some("all"));
        assert_eq!(
            f.lookup("acme", "chat.newagentmessage", "apple.title"),
            Some("acme chat")
        );
        assert_eq!(
            f.lookup("acme", "chat.x", "apple.sound"),
            Some("default"),
            "shared sections still apply"
        );
        assert_eq!(f.lookup("other", "ors.x", "fcm.title"), None);
    }

    #[test]
    fn texts_by_language_and_tag_prefix() {
        let f = Formats::default().with_localized(HashMap::from([
            (
                "fr".to_owned(),
                section(&[
                    ("chat", "Du nouveau"),
                    ("chat.newagentmessage", "Nouveau message"),
                ]),
            ),
            ("pt-BR".to_owned(), section(&[("chat", "Novidade")])),
        ]));
        assert_eq!(
            f.localized("fr", "chat.newagentmessage"),
            Some("Nouveau message")
        );
        assert_eq!(
            f.localized("fr-CA", "chat.notice.joined"),
            Some("Du nouveau")
        );
        assert_eq!(f.localized("pt-br", "chat.x"), Some("Novidade"));
        assert_eq!(f.localized("de", "chat.x"), None);
        assert_eq!(f.localized("fr", "ors.x"), None);
    }
}
