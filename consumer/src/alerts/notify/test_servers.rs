//! Real servers on loopback for the notification tests: a small HTTP/1.1 server whose answers
//! follow a script, and an SMTP receiver that keeps what it is sent. Test code only.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rcgen::CertifiedKey;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use tokio_rustls::TlsAcceptor;

/// The longest a test waits for something to arrive.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// How the HTTP server answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    /// This status, empty body.
    Status(u16),
    /// Read the request, then never answer (until the client hangs up).
    Silent,
}

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("the body is UTF-8")
    }
}

/// An HTTP server on 127.0.0.1 that answers the n-th request with `script[n]` (the last entry
/// once the script runs out) and hands every request to the test.
pub struct HttpServer {
    pub addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<Request>,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl HttpServer {
    /// Starts the server.
    pub async fn start(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, requests) = mpsc::unbounded_channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let counter = Arc::new(Mutex::new(0usize));
        let seen_by_server = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tx, seen, counter, script) = (
                    tx.clone(),
                    seen_by_server.clone(),
                    counter.clone(),
                    script.clone(),
                );
                tokio::spawn(async move {
                    serve_http(stream, tx, seen, counter, script).await;
                });
            }
        });
        Self {
            addr,
            requests,
            seen,
        }
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request, waiting at most [`PATIENCE`].
    pub async fn next_request(&mut self) -> Request {
        tokio::time::timeout(PATIENCE, self.requests.recv())
            .await
            .expect("a request within the patience")
            .expect("the server runs")
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

async fn serve_http(
    stream: TcpStream,
    tx: mpsc::UnboundedSender<Request>,
    seen: Arc<Mutex<Vec<Request>>>,
    counter: Arc<Mutex<usize>>,
    script: Vec<Reply>,
) {
    let mut stream = BufReader::new(stream);
    // One request per connection is enough: each reply closes it.
    let mut line = String::new();
    if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if stream.read_line(&mut header).await.unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if stream.read_exact(&mut body).await.is_err() {
        return;
    }
    let request = Request {
        method,
        path,
        headers,
        body,
    };
    let n = {
        let mut counter = counter.lock().expect("not poisoned");
        *counter += 1;
        *counter - 1
    };
    seen.lock().expect("not poisoned").push(request.clone());
    let _ = tx.send(request);
    let reply = script.get(n).or(script.last()).copied();
    match reply.unwrap_or(Reply::Status(200)) {
        Reply::Status(code) => {
            let answer = format!(
                "HTTP/1.1 {code} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.get_mut().write_all(answer.as_bytes()).await;
            let _ = stream.get_mut().shutdown().await;
        }
        Reply::Silent => {
            // Hold the connection until the client gives up.
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
        }
    }
}

/// One mail as the SMTP receiver got it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, dot-unstuffed, CRLF line ends.
    pub data: String,
    /// Whether it came over TLS (from the start or after STARTTLS).
    pub encrypted: bool,
    /// The user and password of a successful `AUTH PLAIN`, if any.
    pub login: Option<(String, String)>,
}

impl Mail {
    /// A header's value (folded lines joined), by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    /// The body after the headers, as a mail client shows it (quoted-printable decoded).
    pub fn body(&self) -> String {
        let raw = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        match self.header("content-transfer-encoding").as_deref() {
            Some("quoted-printable") => {
                let bytes =
                    quoted_printable::decode(raw.as_bytes(), quoted_printable::ParseMode::Robust)
                        .expect("valid quoted-printable");
                String::from_utf8(bytes).expect("UTF-8 text")
            }
            _ => raw,
        }
    }
}

/// How the SMTP receiver protects its connections.
#[derive(Clone)]
pub enum SmtpTls {
    /// Plain text only, offering neither STARTTLS nor AUTH.
    None,
    /// Offers STARTTLS; AUTH PLAIN once encrypted.
    StartTls(TlsAcceptor),
    /// TLS from the first byte; AUTH PLAIN.
    Wrapper(TlsAcceptor),
}

/// A certificate for 127.0.0.1, made for the test, and a TLS acceptor that presents it.
pub fn loopback_tls() -> (String, TlsAcceptor) {
    let CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let key = PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .expect("server config");
    (cert.pem(), TlsAcceptor::from(Arc::new(config)))
}

/// An SMTP receiver on 127.0.0.1: enough for a client to hand over mail.
pub struct SmtpServer {
    pub addr: SocketAddr,
    mails: mpsc::UnboundedReceiver<Mail>,
    connections: Arc<Mutex<usize>>,
}

impl SmtpServer {
    /// Starts a plain receiver.
    pub async fn start() -> Self {
        Self::start_with(SmtpTls::None).await
    }

    /// Starts a receiver protected as `tls` says.
    pub async fn start_with(tls: SmtpTls) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, mails) = mpsc::unbounded_channel();
        let connections = Arc::new(Mutex::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                *counted.lock().expect("not poisoned") += 1;
                let (tx, tls) = (tx.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = serve_smtp(stream, tls, tx).await;
                });
            }
        });
        Self {
            addr,
            mails,
            connections,
        }
    }

    /// The next mail, waiting at most [`PATIENCE`].
    pub async fn next_mail(&mut self) -> Mail {
        tokio::time::timeout(PATIENCE, self.mails.recv())
            .await
            .expect("a mail within the patience")
            .expect("the server runs")
    }

    /// A mail already received, if any.
    pub fn received(&mut self) -> Option<Mail> {
        self.mails.try_recv().ok()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        *self.connections.lock().expect("not poisoned")
    }
}

const GREETING: &[u8] = b"220 localhost test receiver\r\n";

async fn serve_smtp(
    stream: TcpStream,
    tls: SmtpTls,
    tx: mpsc::UnboundedSender<Mail>,
) -> std::io::Result<()> {
    match tls {
        SmtpTls::None => {
            let mut stream = BufReader::new(stream);
            stream.get_mut().write_all(GREETING).await?;
            session(&mut stream, Offer::Nothing, &tx).await?;
        }
        SmtpTls::Wrapper(acceptor) => {
            let mut stream = BufReader::new(acceptor.accept(stream).await?);
            stream.get_mut().write_all(GREETING).await?;
            session(&mut stream, Offer::Auth, &tx).await?;
        }
        SmtpTls::StartTls(acceptor) => {
            let mut plain = BufReader::new(stream);
            plain.get_mut().write_all(GREETING).await?;
            if session(&mut plain, Offer::StartTls, &tx).await? == End::StartTls {
                // No greeting after STARTTLS: the client starts again with EHLO.
                let mut stream = BufReader::new(acceptor.accept(plain.into_inner()).await?);
                session(&mut stream, Offer::Auth, &tx).await?;
            }
        }
    }
    Ok(())
}

/// What the receiver advertises in this phase of the connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Offer {
    Nothing,
    StartTls,
    /// Encrypted: AUTH PLAIN is offered.
    Auth,
}

/// How a session phase ended.
#[derive(PartialEq, Eq)]
enum End {
    Closed,
    StartTls,
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    offer: Offer,
    tx: &mpsc::UnboundedSender<Mail>,
) -> std::io::Result<End> {
    let (mut from, mut to, mut login) = (String::new(), Vec::new(), None);
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(End::Closed);
        }
        let command = line.trim_end().to_owned();
        let mut words = command.split_whitespace();
        let verb = words.next().unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => match offer {
                Offer::Nothing => b"250-localhost\r\n250 HELP\r\n",
                Offer::StartTls => b"250-localhost\r\n250 STARTTLS\r\n",
                Offer::Auth => b"250-localhost\r\n250 AUTH PLAIN\r\n",
            },
            "STARTTLS" if offer == Offer::StartTls => {
                stream.get_mut().write_all(b"220 Go ahead\r\n").await?;
                return Ok(End::StartTls);
            }
            "AUTH" if offer == Offer::Auth => {
                // AUTH PLAIN <base64 of "\0user\0password">
                let decoded = words
                    .nth(1)
                    .and_then(|b64| BASE64.decode(b64).ok())
                    .and_then(|bytes| String::from_utf8(bytes).ok());
                match decoded
                    .as_deref()
                    .map(|s| s.split('\0').collect::<Vec<_>>())
                {
                    Some(parts) if parts.len() == 3 => {
                        login = Some((parts[1].to_owned(), parts[2].to_owned()));
                        b"235 Authenticated\r\n"
                    }
                    _ => b"501 Malformed AUTH\r\n",
                }
            }
            "HELO" | "NOOP" => b"250 OK\r\n",
            "RSET" => {
                from.clear();
                to.clear();
                b"250 OK\r\n"
            }
            "MAIL" => {
                from = address(&command);
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(address(&command));
                b"250 OK\r\n"
            }
            "DATA" => {
                stream
                    .get_mut()
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    let mut line = String::new();
                    if stream.read_line(&mut line).await? == 0 {
                        return Ok(End::Closed);
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    // Dot-stuffing: a leading ".." was a ".".
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let _ = tx.send(Mail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                    encrypted: offer == Offer::Auth,
                    login: login.clone(),
                });
                b"250 OK queued\r\n"
            }
            "QUIT" => {
                stream.get_mut().write_all(b"221 Bye\r\n").await?;
                return Ok(End::Closed);
            }
            _ => b"502 Command not implemented\r\n",
        };
        stream.get_mut().write_all(reply).await?;
    }
}

/// The address between `<` and `>` of `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_owned())
        .unwrap_or_default()
}
