//! A loopback TCP proxy in front of a broker that can make its open connections go silent
//! without closing them: the half-open connection a dropped NAT entry or a pulled cable
//! leaves behind, which only heartbeats can detect. New connections still pass.

use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards `127.0.0.1:port` to a target address until dropped.
pub struct SilenceableProxy {
    pub port: u16,
    /// One switch per connection accepted so far; true silences it.
    switches: Arc<Mutex<Vec<watch::Sender<bool>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl SilenceableProxy {
    /// Starts forwarding to `target` (e.g. `127.0.0.1:5672`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
        let port = listener.local_addr().expect("proxy address").port();
        let switches: Arc<Mutex<Vec<watch::Sender<bool>>>> = Arc::default();
        let target = target.to_owned();
        let accept = tokio::spawn({
            let switches = Arc::clone(&switches);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        continue;
                    };
                    let (switch, silenced) = watch::channel(false);
                    switches.lock().expect("switches").push(switch);
                    tokio::spawn(forward(client, server, silenced));
                }
            }
        });
        Self {
            port,
            switches,
            accept,
        }
    }

    /// Every connection open now stops passing bytes either way, but stays open.
    pub fn silence_open_connections(&self) {
        for switch in self.switches.lock().expect("switches").iter() {
            switch.send_replace(true);
        }
    }
}

impl Drop for SilenceableProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Dropping the switches ends the connections' tasks, which closes their sockets.
        self.switches.lock().expect("switches").clear();
    }
}

/// Copies both ways until either side closes; once silenced, holds both sockets open and
/// moves nothing until the proxy goes away.
async fn forward(
    mut client: TcpStream,
    mut server: TcpStream,
    mut silenced: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
        _ = silenced.wait_for(|silent| *silent) => {}
    }
    // Err means the proxy was dropped: the sockets close with this task.
    let _ = silenced.wait_for(|_| false).await;
}
