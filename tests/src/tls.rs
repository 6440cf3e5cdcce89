//! HTTPS for tests: a certificate authority and a certificate for 127.0.0.1 made for the
//! test (with `openssl`), and a TLS front for a mock relay (`bench/peers/tls_proxy.py`
//! terminating TLS on loopback and forwarding to the relay's plain-HTTP port). A client that trusts the
//! authority (`SSL_CERT_FILE`, as the platform's verifier reads it on Linux) reaches the
//! relay over HTTPS; any other refuses the certificate.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// A certificate authority made for one test, and a certificate it signed for 127.0.0.1
/// (PEM files in a scratch directory, removed on drop).
pub struct TestAuthority {
    /// The authority's certificate, for `SSL_CERT_FILE`.
    pub ca: PathBuf,
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl TestAuthority {
    /// Makes the authority and the server's certificate (P-256 keys: quick to make).
    pub fn new(name: &str) -> TestAuthority {
        let dir = std::env::temp_dir().join(format!("falq-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=falq test authority", "-keyout", "ca.key", "-out", "ca.pem"];
        ca.extend(ec);
        ca.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        openssl(&dir, &ca);
        let mut csr = vec!["req", "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "leaf.csr"];
        csr.extend(ec);
        openssl(&dir, &csr);
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write leaf.ext");
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                "cert.pem",
                "-extfile",
                "leaf.ext",
            ],
        );
        TestAuthority { ca: dir.join("ca.pem"), cert: dir.join("cert.pem"), key: dir.join("key.pem"), dir }
    }
}

impl Drop for TestAuthority {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The front, its authority, and the process serving it (killed on drop).
pub struct TlsFront {
    /// `https://127.0.0.1:PORT`.
    pub base_url: String,
    /// The authority that signed the front's certificate.
    pub authority: TestAuthority,
    child: Child,
}

impl TlsFront {
    /// Serves HTTPS on a free port of 127.0.0.1, forwarding to `target` (`http://127.0.0.1:PORT`).
    pub fn start(target: &str, name: &str) -> TlsFront {
        let authority = TestAuthority::new(name);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/peers/tls_proxy.py");
        let (child, port) = crate::spawn_listening(
            Command::new("python3").arg(script).arg(&authority.cert).arg(&authority.key).arg(target.trim_start_matches("http://")).arg("0"),
        );
        assert!(port.parse::<u16>().is_ok(), "the TLS front did not start: listening on {port:?}");
        TlsFront { base_url: format!("https://127.0.0.1:{port}"), authority, child }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
