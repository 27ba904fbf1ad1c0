//! The model's sockets: madsim's simulated TCP under `--cfg madsim`, tokio's real TCP otherwise.
//! Both have the same API, so nothing else in the model knows which one it runs on.

#[cfg(madsim)]
pub use madsim::net::{TcpListener, TcpStream};
#[cfg(not(madsim))]
pub use tokio::net::{TcpListener, TcpStream};
