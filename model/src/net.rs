//! The model's sockets: madsim's simulated TCP under `--cfg madsim`, tokio's real TCP otherwise.
//! Both have the same API, so nothing else in the model knows which one it runs on.

#[cfg(madsim)]
pub use self::simulated::{ReadHalf, TcpListener, TcpStream, WriteHalf};
#[cfg(not(madsim))]
pub use tokio::net::tcp::{OwnedReadHalf as ReadHalf, OwnedWriteHalf as WriteHalf};
#[cfg(not(madsim))]
pub use tokio::net::{TcpListener, TcpStream};

/// madsim's TCP, with one wake per message instead of two.
///
/// A madsim stream that waits to read is woken twice per message: first when the sender flushes,
/// only so that the stream can start timing the message's flight (it takes the message off its
/// channel and arms a timer for its arrival), then when the timer fires and the bytes are there.
/// The first wake polled the reader's whole task (a fetcher, say: its loop, the fetch, the
/// exchange, the deadline, the frame reader) to learn nothing. Here the stream is shared with its
/// own waker, which takes that first step itself while the sender's flush runs, and wakes the task
/// only when there is something to read or the stream ended.
///
/// The step is taken only inside a flush: madsim fires timers with its timer heap locked, and
/// a stream that arms a timer from there (a clogged link retrying) would wait on that lock
/// forever. Every other wake goes straight to the task, as before. The stream and its waker share
/// a `crate::sync::Lock`, bound to the runtime's thread.
#[cfg(madsim)]
mod simulated {
    use std::cell::Cell;
    use std::io;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::{Arc, Weak};
    use std::task::{Context, Poll, Wake, Waker};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use crate::sync::Lock;

    thread_local! {
        /// Whether a stream of this thread is flushing: a wake now comes from a sender.
        static FLUSHING: Cell<bool> = const { Cell::new(false) };
    }

    pub struct TcpListener(madsim::net::TcpListener);

    impl TcpListener {
        pub async fn bind(address: SocketAddr) -> io::Result<Self> {
            madsim::net::TcpListener::bind(address)
                .await
                .map(TcpListener)
        }

        pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
            let (stream, peer) = self.0.accept().await?;
            Ok((TcpStream::new(stream), peer))
        }
    }

    pub struct TcpStream {
        shared: Arc<Lock<Shared>>,
    }

    struct Shared {
        stream: madsim::net::TcpStream,
        /// The task that last waited to read.
        task: Option<Waker>,
        /// The stream's own waker, handed to madsim's stream in place of the task's.
        own: Waker,
    }

    /// The stream's own waker. It holds the stream weakly: madsim's stream keeps its wakers, and
    /// a strong hold would keep a dropped connection open.
    struct StreamWaker(Weak<Lock<Shared>>);

    impl Wake for StreamWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            let Some(shared) = self.0.upgrade() else {
                return;
            };
            if FLUSHING.get() {
                // Let the stream take the message off its channel and arm its arrival timer. A
                // read into no room reads nothing: it is ready once bytes or the end are there.
                let mut none = ReadBuf::new(&mut []);
                let mut shared = shared.lock();
                let Shared { stream, own, .. } = &mut *shared;
                let step = Pin::new(stream).poll_read(&mut Context::from_waker(own), &mut none);
                if step.is_pending() {
                    return;
                }
            }
            let task = shared.lock().task.take();
            if let Some(task) = task {
                task.wake();
            }
        }
    }

    impl TcpStream {
        fn new(stream: madsim::net::TcpStream) -> Self {
            let shared = Arc::new_cyclic(|weak| {
                Lock::new(Shared {
                    stream,
                    task: None,
                    own: Waker::from(Arc::new(StreamWaker(weak.clone()))),
                })
            });
            TcpStream { shared }
        }

        pub async fn connect(peer: SocketAddr) -> io::Result<Self> {
            madsim::net::TcpStream::connect(peer).await.map(Self::new)
        }

        pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
            self.shared.lock().stream.set_nodelay(nodelay)
        }

        /// A reading half and a writing half, for two tasks: a pipelining client writes requests
        /// from one while another reads the answers. Named and used as tokio's `into_split`.
        pub fn into_split(self) -> (ReadHalf, WriteHalf) {
            let writer = TcpStream {
                shared: self.shared.clone(),
            };
            (ReadHalf(self), WriteHalf(writer))
        }
    }

    /// The reading half of a [`TcpStream`].
    pub struct ReadHalf(TcpStream);

    /// The writing half of a [`TcpStream`].
    pub struct WriteHalf(TcpStream);

    impl AsyncRead for ReadHalf {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for WriteHalf {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    impl AsyncRead for TcpStream {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let mut shared = self.shared.lock();
            let Shared { stream, task, own } = &mut *shared;
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
            Pin::new(stream).poll_read(&mut Context::from_waker(own), buf)
        }
    }

    impl AsyncWrite for TcpStream {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.shared.lock().stream).poll_write(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let mut shared = self.shared.lock();
            let before = FLUSHING.replace(true);
            let flushed = Pin::new(&mut shared.stream).poll_flush(cx);
            FLUSHING.set(before);
            flushed
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.shared.lock().stream).poll_shutdown(cx)
        }
    }
}

#[cfg(all(test, madsim))]
mod tests {
    use std::future::Future;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{TcpListener, TcpStream};

    const SERVER: [u8; 4] = [10, 0, 0, 1];
    const CLIENT: [u8; 4] = [10, 0, 0, 2];
    const PORT: u16 = 7000;

    /// Counts how often the future it wraps is polled.
    struct Counted<F> {
        polls: Arc<AtomicU64>,
        inner: Pin<Box<F>>,
    }

    impl<F: Future> Future for Counted<F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            self.inner.as_mut().poll(cx)
        }
    }

    /// Runs `server` on one node for the connection `client` makes from another.
    fn run<S, C, SF, CF>(server: S, client: C)
    where
        S: FnOnce(TcpStream) -> SF + Send + 'static,
        SF: Future<Output = ()> + Send + 'static,
        C: FnOnce(TcpStream, [madsim::task::NodeId; 2]) -> CF + Send + 'static,
        CF: Future<Output = ()> + Send + 'static,
    {
        madsim::runtime::Runtime::new().block_on(async move {
            let handle = madsim::runtime::Handle::current();
            let server_node = handle.create_node().ip(SERVER.into()).build();
            let client_node = handle.create_node().ip(CLIENT.into()).build();
            let served = server_node.spawn(async move {
                let listener = TcpListener::bind(SocketAddr::from((SERVER, PORT)))
                    .await
                    .expect("bind");
                let (stream, _) = listener.accept().await.expect("accept");
                server(stream).await
            });
            madsim::time::sleep(Duration::from_millis(1)).await;
            let nodes = [client_node.id(), server_node.id()];
            client_node
                .spawn(async move {
                    let stream = TcpStream::connect(SocketAddr::from((SERVER, PORT)))
                        .await
                        .expect("connect");
                    client(stream, nodes).await
                })
                .await
                .expect("client");
            served.await.expect("server");
        });
    }

    #[test]
    fn a_waiting_reader_is_polled_once_per_message() {
        const MESSAGES: u64 = 20;
        let polls = Arc::new(AtomicU64::new(0));
        let counted = polls.clone();
        run(
            move |mut stream| async move {
                let read = async move {
                    let mut byte = [0u8; 1];
                    for _ in 0..MESSAGES {
                        stream.read_exact(&mut byte).await.expect("a message");
                    }
                };
                Counted {
                    polls: counted,
                    inner: Box::pin(read),
                }
                .await
            },
            |mut stream, _| async move {
                for i in 0..MESSAGES {
                    madsim::time::sleep(Duration::from_millis(10)).await;
                    stream.write_all(&[i as u8]).await.expect("write");
                    stream.flush().await.expect("flush");
                }
            },
        );
        // One poll to start and one per message; madsim alone would add one per flush.
        assert_eq!(polls.load(Ordering::Relaxed), MESSAGES + 1);
    }

    #[test]
    fn a_dropped_stream_ends_its_peer_reads() {
        run(
            |mut stream| async move {
                let mut bytes = Vec::new();
                stream
                    .read_to_end(&mut bytes)
                    .await
                    .expect("read to the end");
                assert_eq!(bytes, b"bye");
            },
            |mut stream, _| async move {
                stream.write_all(b"bye").await.expect("write");
                stream.flush().await.expect("flush");
            },
        );
    }

    #[test]
    fn a_clogged_link_delivers_once_it_heals() {
        run(
            |mut stream| async move {
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).await.expect("the message");
                assert_eq!(byte, [9]);
            },
            |mut stream, [client, server]| async move {
                let net = madsim::net::NetSim::current();
                net.clog_link(client, server);
                stream.write_all(&[9]).await.expect("write");
                stream.flush().await.expect("flush");
                // The stream retries on timers while the link is down.
                madsim::time::sleep(Duration::from_secs(3)).await;
                net.unclog_link(client, server);
            },
        );
    }
}
