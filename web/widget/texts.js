// The widget's fixed texts, one table per language. A site picks one with
// `data-lang` (else the page's <html lang>, else the browser's language);
// a language missing here falls back to English, a text missing in a
// language falls back to its English text.

const en = {
  launcher: "Chat with us",
  title: "Chat with us",
  close: "Close the chat window",
  intro: "Tell us who you are and we will connect you with an agent.",
  nickname: "Your name",
  firstName: "First name",
  lastName: "Last name",
  email: "Email address",
  subject: "What is it about? (optional)",
  start: "Start chat",
  message: "Your message",
  hint: "Enter sends, Shift+Enter starts a new line.",
  send: "Send",
  sending: "Sending…",
  end: "End chat",
  again: "Start a new chat",
  you: "You",
  agent: "Agent",
  joined: "{name} joined the chat",
  left: "{name} left the chat",
  typing: "{name} is typing…",
  file: "{name} sent a file: {file}",
  link: "{name} shared a link:",
  state: {
    idle: "",
    connecting: "Connecting…",
    waiting: "Waiting for an agent. Please stay on this page.",
    connected: "You are chatting with {name}",
    reconnecting: "The connection was lost. Reconnecting…",
    ended: "The chat has ended.",
    unavailable: "Chat is not available right now. Please try again later.",
  },
  error: {
    tooLong: "Your message is too long. Please shorten it and send it again.",
    notSent: "Your message could not be sent. Please try again.",
    name: "Please enter your name.",
    notEnded: "The chat could not be ended. Please try again.",
  },
};

const de = {
  launcher: "Chatten Sie mit uns",
  title: "Chatten Sie mit uns",
  close: "Chatfenster schließen",
  intro: "Sagen Sie uns, wer Sie sind, und wir verbinden Sie mit einem Mitarbeiter.",
  nickname: "Ihr Name",
  firstName: "Vorname",
  lastName: "Nachname",
  email: "E-Mail-Adresse",
  subject: "Worum geht es? (optional)",
  start: "Chat beginnen",
  message: "Ihre Nachricht",
  hint: "Eingabetaste sendet, Umschalt+Eingabetaste beginnt eine neue Zeile.",
  send: "Senden",
  sending: "Wird gesendet…",
  end: "Chat beenden",
  again: "Neuen Chat beginnen",
  you: "Sie",
  agent: "Mitarbeiter",
  joined: "{name} ist dem Chat beigetreten",
  left: "{name} hat den Chat verlassen",
  typing: "{name} schreibt…",
  file: "{name} hat eine Datei gesendet: {file}",
  link: "{name} hat einen Link geteilt:",
  state: {
    idle: "",
    connecting: "Verbindung wird aufgebaut…",
    waiting: "Wir suchen einen Mitarbeiter für Sie. Bitte bleiben Sie auf dieser Seite.",
    connected: "Sie chatten mit {name}",
    reconnecting: "Die Verbindung ist unterbrochen. Sie wird wiederhergestellt…",
    ended: "Der Chat ist beendet.",
    unavailable: "Der Chat ist gerade nicht verfügbar. Bitte versuchen Sie es später noch einmal.",
  },
  error: {
    tooLong: "Ihre Nachricht ist zu lang. Bitte kürzen Sie sie und senden Sie sie erneut.",
    notSent: "Ihre Nachricht konnte nicht gesendet werden. Bitte versuchen Sie es noch einmal.",
    name: "Bitte geben Sie Ihren Namen ein.",
    notEnded: "Der Chat konnte nicht beendet werden. Bitte versuchen Sie es noch einmal.",
  },
};

export const LANGUAGES = { en, de };

/** The texts for `wanted` (e.g. "de-AT"): the language, else English. */
export function textsFor(wanted) {
  const code = String(wanted || "en").toLowerCase().split("-")[0];
  const chosen = LANGUAGES[code] || en;
  const texts = { ...en, ...chosen, state: { ...en.state, ...chosen.state }, error: { ...en.error, ...chosen.error } };
  return { code: LANGUAGES[code] ? code : "en", texts };
}

/** `template` with each {name} replaced by `values.name`. */
export function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, k) => (values[k] ?? ""));
}
