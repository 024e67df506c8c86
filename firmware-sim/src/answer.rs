//! `firmware-sim answer`: a minimal OCPP-J server that answers every CALL at once (Boot
//! Accepted, everything else `{}`), storing and validating nothing. It exists to measure the
//! load generator itself: against it, the generator's figures are the generator's ceiling.

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Options of `firmware-sim answer`.
#[derive(Debug, Clone, Args)]
pub struct AnswerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9300")]
    pub listen: String,
}

/// Serves until Ctrl-C.
pub async fn serve(args: AnswerArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&args.listen).await?;
    eprintln!("answering OCPP-J on ws://{}/ocpp/{{id}}", listener.local_addr()?);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((socket, _)) = accepted else { continue };
                tokio::spawn(connection(socket));
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

async fn connection(socket: TcpStream) {
    let _ = socket.set_nodelay(true);
    let negotiate = |request: &Request, mut response: Response| {
        let offered = request
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let chosen = ocpp::Version::negotiate(offered.split(','));
        if let Some(v) = chosen {
            response
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(v.subprotocol()));
        }
        Ok(response)
    };
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async_with_config(socket, negotiate, Some(config)).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else { continue };
        if let Some(answer) = answer(&text) {
            if ws.send(Message::Text(answer.into())).await.is_err() {
                return;
            }
        }
    }
}

/// The answer to a CALL, read from the frame's prefix without parsing the payload.
pub fn answer(text: &str) -> Option<String> {
    let rest = text.strip_prefix("[2,\"")?;
    let (id, rest) = rest.split_once('"')?;
    let action = rest.strip_prefix(",\"")?.split('"').next()?;
    Some(if action == "BootNotification" {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        format!("[3,\"{id}\",{{\"status\":\"Accepted\",\"currentTime\":\"{now}\",\"interval\":300}}]")
    } else {
        format!("[3,\"{id}\",{{}}]")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_calls_by_prefix() {
        assert_eq!(answer("[2,\"7\",\"Heartbeat\",{}]").as_deref(), Some("[3,\"7\",{}]"));
        assert!(answer("[2,\"b\",\"BootNotification\",{}]")
            .unwrap()
            .contains("Accepted"));
        assert_eq!(answer("[3,\"7\",{}]"), None);
        assert_eq!(answer("nonsense"), None);
    }
}
