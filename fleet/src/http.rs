//! The HTTP(S) client of the destinations: ureq with rustls, a CA of the
//! collector's own and a client certificate, bounded times, and failures
//! sorted into what they mean for a retry (unreachable, refused with an
//! HTTP status, a TLS failure).
//!
//! ureq over rustls: a blocking client (the submitter is one loop; no async
//! runtime in a crash tool), TLS written in Rust with no OpenSSL to link,
//! and client certificates and private roots as plain configuration.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// The files of a TLS setup; each optional (no CA: Mozilla's roots).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the destination's certificate (PEM).
    pub ca: Option<PathBuf>,
    /// This host's certificate (PEM, with its chain), for servers that ask
    /// for one (systemd-journal-remote over HTTPS does).
    pub client_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub client_key: Option<PathBuf>,
}

/// What a failed delivery means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// Nothing answered (no route, refused connection, time out, name not
    /// found): the destination is down or unreachable.
    Unreachable,
    /// TLS could not be set up (a certificate that does not verify, a bad
    /// client certificate, an unreadable CA file).
    Tls,
    /// The destination answered, with a status that is not a success.
    Refused(u16),
    /// Anything else (a protocol error, the configuration).
    Other,
}

/// A failed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    /// The HTTP status, when the destination answered one.
    pub fn http_status(&self) -> Option<u16> {
        match self.kind {
            FailureKind::Refused(status) => Some(status),
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The largest answer body read (a refusal's explanation).
const MAX_ANSWER: u64 = 4096;

/// An HTTP client for one destination.
pub struct Client {
    agent: ureq::Agent,
    /// Whether a client certificate is presented: under TLS 1.3 a server
    /// that refuses it says so only after the client's handshake is done,
    /// so the refusal may reach us as the connection dropped mid-request.
    presents_client_cert: bool,
}

impl Client {
    /// A client with these TLS files and this bound on each request (from
    /// connecting to the last byte of the answer).
    pub fn new(tls: &TlsFiles, timeout: Duration) -> Result<Client, Failure> {
        let tls_config = tls_config(tls)?;
        let config = ureq::Agent::config_builder()
            .tls_config(tls_config)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
            .max_redirects(0)
            .build();
        Ok(Client {
            agent: config.into(),
            presents_client_cert: tls.client_cert.is_some(),
        })
    }

    /// POSTs `body` to `url` and returns the answer's body when the status
    /// is a success (2xx).
    pub fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<String, Failure> {
        let mut request = self.agent.post(url).header("Content-Type", content_type);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request
            .send(body)
            .map_err(|e| failure(url, e, self.presents_client_cert))?;
        let status = response.status().as_u16();
        let answer = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .unwrap_or_default();
        let answer = answer.trim().to_string();
        if (200..300).contains(&status) {
            Ok(answer)
        } else {
            Err(Failure::new(
                FailureKind::Refused(status),
                format!("{url} refused it: HTTP {status}: {answer}"),
            ))
        }
    }
}

fn failure(url: &str, err: ureq::Error, presents_client_cert: bool) -> Failure {
    use ureq::Error as E;
    let dropped_after_handshake = presents_client_cert
        && url.starts_with("https:")
        && matches!(&err, E::Io(io) if matches!(
            io.kind(),
            std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
        ));
    let kind = match &err {
        // TLS 1.3: the server checks our certificate after our side of the
        // handshake is over; its refusal may arrive as its alert, or, when
        // we were already writing the request, as the connection dropped.
        _ if dropped_after_handshake => FailureKind::Tls,
        E::HostNotFound | E::ConnectionFailed | E::Timeout(_) => FailureKind::Unreachable,
        E::Io(io) => match io.kind() {
            std::io::ErrorKind::InvalidData => FailureKind::Tls,
            std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::HostUnreachable
            | std::io::ErrorKind::NetworkUnreachable
            | std::io::ErrorKind::NetworkDown
            | std::io::ErrorKind::TimedOut => FailureKind::Unreachable,
            // Connected, then dropped (journal-remote drops the connection
            // of an upload holding an entry it refuses).
            _ => FailureKind::Other,
        },
        E::Tls(_) | E::Rustls(_) | E::Pem(_) | E::TlsRequired => FailureKind::Tls,
        E::StatusCode(status) => FailureKind::Refused(*status),
        _ => FailureKind::Other,
    };
    // rustls's errors come through io::Error: say so when the message is
    // about certificates.
    let message = err.to_string();
    let kind = if kind != FailureKind::Tls
        && !matches!(kind, FailureKind::Refused(_))
        && (message.contains("certificate") || message.contains("TLS") || message.contains("tls"))
    {
        FailureKind::Tls
    } else {
        kind
    };
    let what = match kind {
        FailureKind::Unreachable => "cannot reach",
        FailureKind::Tls => "TLS failed with",
        _ => "the upload failed at",
    };
    let why = if dropped_after_handshake {
        " (the server closed the connection once TLS was set up: it may have refused our client certificate)"
    } else {
        ""
    };
    Failure::new(kind, format!("{what} {url}: {message}{why}"))
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| {
        Failure::new(
            FailureKind::Tls,
            format!("cannot read the {what} {}: {e}", path.display()),
        )
    })
}

fn tls_config(files: &TlsFiles) -> Result<TlsConfig, Failure> {
    let mut builder = TlsConfig::builder();
    if let Some(ca) = &files.ca {
        let pem = read_pem(ca, "CA certificate")?;
        let certs = certificates(&pem).map_err(|e| {
            Failure::new(
                FailureKind::Tls,
                format!("the CA certificate {}: {e}", ca.display()),
            )
        })?;
        builder = builder.root_certs(RootCerts::Specific(Arc::new(certs)));
    }
    match (&files.client_cert, &files.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(&read_pem(cert, "client certificate")?).map_err(|e| {
                Failure::new(
                    FailureKind::Tls,
                    format!("the client certificate {}: {e}", cert.display()),
                )
            })?;
            let key_pem = read_pem(key, "client key")?;
            let key_parsed = PrivateKey::from_pem(&key_pem).map_err(|e| {
                Failure::new(
                    FailureKind::Tls,
                    format!("the client key {}: {e}", key.display()),
                )
            })?;
            builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key_parsed)));
        }
        (None, None) => {}
        _ => {
            return Err(Failure::new(
                FailureKind::Tls,
                "a client certificate needs both client_cert and client_key",
            ))
        }
    }
    Ok(builder.build())
}

/// Every certificate of a PEM file (at least one).
fn certificates(pem: &[u8]) -> Result<Vec<Certificate<'static>>, String> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let PemItem::Certificate(cert) = item.map_err(|e| e.to_string())? {
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(certs)
}
