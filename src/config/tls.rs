//! The TLS listener's settings (`[tls]`): off unless `listen` is set. The
//! certificate comes from PEM files (`certificate`, the chain; `private-key`)
//! or from a PKCS#12 keystore (`keystore`, `keystore-password`), as GMS
//! administrators keep theirs. HSTS on TLS answers, with Jetty's names and
//! defaults: `stsMaxAgeSeconds` (31536000), `stsIncludeSubdomains` (true);
//! `stsMaxAgeSeconds = -1` sends none. Cookies set over TLS are `Secure`,
//! with `cookie-samesite` (`None`).

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;

use super::options::Options;

#[derive(Debug, Clone)]
pub enum CertificateSource {
    Pem {
        chain: PathBuf,
        key: PathBuf,
    },
    Keystore {
        path: PathBuf,
        password: SecretString,
    },
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// `listen`: one or several addresses (comma-separated).
    pub listen: Vec<SocketAddr>,
    pub source: CertificateSource,
    /// The `Strict-Transport-Security` value, if any.
    pub hsts: Option<String>,
    /// `cookie-samesite` (`None`): the `SameSite` of cookies set over TLS
    /// (which are also `Secure`): `None` lets a widget on another site keep
    /// its CometD session.
    pub same_site: String,
    /// `redirect-http` (false): the plain listener answers everything with
    /// a redirect to the same URL over TLS (GMS's `CONFIDENTIAL` transport
    /// guarantee on `/*`).
    pub redirect_http: bool,
}

impl TlsSettings {
    /// `None` when `[tls] listen` is not set; an error names what is wrong.
    pub fn from_options(o: &Options) -> Result<Option<Self>, String> {
        let get = |option: &str| o.get("tls", option).filter(|v| !v.is_empty());
        let Some(listen) = o.addresses("tls", "listen")? else {
            return Ok(None);
        };
        let source = match (get("certificate"), get("private-key"), get("keystore")) {
            (Some(chain), Some(key), None) => CertificateSource::Pem {
                chain: chain.into(),
                key: key.into(),
            },
            (None, None, Some(path)) => CertificateSource::Keystore {
                path: path.into(),
                password: get("keystore-password").unwrap_or("").into(),
            },
            _ => {
                return Err(
                    "[tls] needs certificate and private-key (PEM files), or keystore \
                            (PKCS#12) with keystore-password"
                        .into(),
                )
            }
        };
        let max_age: i64 = o.value("tls", "stsMaxAgeSeconds", 31_536_000);
        let hsts = (max_age >= 0).then(|| {
            if o.flag("tls", "stsIncludeSubdomains", true) {
                format!("max-age={max_age}; includeSubDomains")
            } else {
                format!("max-age={max_age}")
            }
        });
        let same_site = match get("cookie-samesite")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("none") => "None",
            Some("lax") => "Lax",
            Some("strict") => "Strict",
            Some(other) => {
                return Err(format!(
                    "[tls] cookie-samesite: {other:?} is not None, Lax or Strict"
                ))
            }
        };
        Ok(Some(Self {
            listen,
            source,
            hsts,
            same_site: same_site.to_owned(),
            redirect_http: o.flag("tls", "redirect-http", false),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(ini: &str) -> Result<Option<TlsSettings>, String> {
        TlsSettings::from_options(&Options::from_ini(ini, &[]).unwrap())
    }

    #[test]
    fn off_until_listen_and_every_mistake_named() {
        assert!(tls("").unwrap().is_none());
        let pem = "[tls]\nlisten = 127.0.0.1:8443\ncertificate = c.pem\nprivate-key = k.pem\n";
        let t = tls(pem).unwrap().unwrap();
        assert_eq!(
            t.hsts.as_deref(),
            Some("max-age=31536000; includeSubDomains")
        );
        assert_eq!(t.same_site, "None");
        assert!(!t.redirect_http);
        for (ini, says) in [
            ("[tls]\nlisten = nowhere\n", "listen"),
            (
                "[tls]\nlisten = 127.0.0.1:8443\ncertificate = c.pem\n",
                "private-key",
            ),
            (&format!("{pem}keystore = k.p12\n"), "keystore"),
            (
                &format!("{pem}cookie-samesite = sometimes\n"),
                "cookie-samesite",
            ),
        ] {
            let e = tls(ini).unwrap_err();
            assert!(e.contains(says), "{ini}: {e}");
        }
        let t = tls(&format!(
            "{pem}stsMaxAgeSeconds = -1\ncookie-samesite = lax\n"
        ))
        .unwrap()
        .unwrap();
        assert_eq!((t.hsts, t.same_site.as_str()), (None, "Lax"));
    }
}
