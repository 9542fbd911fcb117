//! When an answer reached this host: the kernel's own record of the TCP connection it came
//! over (its `tcp_info`, read through sock_diag netlink as `ss -ti` reads it). A fleet short
//! of CPU gets to an answer long after it arrived; the kernel noted the arrival when it
//! happened, so each answer is counted in the second the server sent it, not the second a
//! device got round to it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags, nlas};

/// A sock_diag netlink socket, asking about one connection at a time.
#[derive(Debug)]
pub struct Kernel {
    socket: netlink_sys::Socket,
    buf: Vec<u8>,
    sequence: u32,
}

impl Kernel {
    /// Opens the socket (any user may ask about its own connections).
    pub fn open() -> io::Result<Kernel> {
        let mut socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
        Ok(Kernel {
            socket,
            buf: vec![0; 8192],
            sequence: 0,
        })
    }

    /// How long ago data last arrived on the TCP connection from `local` to `remote`: for
    /// an HTTP/1 answer a device has just read, how long ago the answer arrived (nothing
    /// else comes over the connection until the next request). The kernel keeps it to the
    /// tick (4 ms at 250 Hz).
    pub fn since_last_data(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Duration> {
        let family = match (local.ip(), remote.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) => AF_INET,
            (IpAddr::V6(_), IpAddr::V6(_)) => AF_INET6,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "mixed families",
                ));
            }
        };
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        // One connection, found by its four ends: no NLM_F_DUMP.
        header.flags = NLM_F_REQUEST;
        header.sequence_number = self.sequence;
        let mut request = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::INFO,
                states: StateFlags::all(),
                socket_id: SocketId {
                    source_port: local.port(),
                    destination_port: remote.port(),
                    source_address: local.ip(),
                    destination_address: remote.ip(),
                    interface_id: 0,
                    // INET_DIAG_NOCOOKIE: found by its addresses alone.
                    cookie: [0xff; 8],
                },
            })
            .into(),
        );
        request.finalize();
        let mut out = vec![0; request.buffer_len()];
        request.serialize(&mut out);
        self.socket.send(&out, 0)?;
        loop {
            let size = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let answer = <NetlinkMessage<SockDiagMessage>>::deserialize(&self.buf[..size])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if answer.header.sequence_number != self.sequence {
                // An answer to an earlier question that was given up on.
                continue;
            }
            return match answer.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => r
                    .nlas
                    .iter()
                    .find_map(|nla| match nla {
                        nlas::Nla::TcpInfo(info) => last_data_recv(info),
                        _ => None,
                    })
                    .map(|ms| Duration::from_millis(u64::from(ms)))
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no tcp_info")),
                NetlinkPayload::Error(e) => Err(e.to_io()),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "unexpected answer",
                )),
            };
        }
    }
}

/// `tcpi_last_data_recv` (milliseconds) from a `struct tcp_info` as the kernel sends it:
/// older kernels send a shorter struct, never one without this field.
fn last_data_recv(info: &[u8]) -> Option<u32> {
    let at = std::mem::offset_of!(libc::tcp_info, tcpi_last_data_recv);
    let bytes = info.get(at..at + 4)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    /// A loopback connection whose peer wrote 300 ms ago: the kernel says about that much,
    /// and it says it of the connection asked about, not of another.
    #[test]
    fn the_kernel_tells_when_data_last_arrived() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut kernel = Kernel::open().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        server.write_all(b"answer").unwrap();
        let mut got = [0u8; 6];
        client.read_exact(&mut got).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let ago = kernel.since_last_data(local, remote).unwrap();
        assert!(
            (Duration::from_millis(290)..Duration::from_millis(1000)).contains(&ago),
            "{ago:?}"
        );
        server.write_all(b"again").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let ago = kernel.since_last_data(local, remote).unwrap();
        assert!(ago < Duration::from_millis(200), "{ago:?}");
        // No such connection: an error, not a time.
        let gone: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(kernel.since_last_data(local, gone).is_err());
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        assert!(kernel.since_last_data(local, v6).is_err());
    }

    #[test]
    fn the_field_is_read_where_the_kernel_puts_it() {
        let mut info = vec![0u8; std::mem::size_of::<libc::tcp_info>()];
        let at = std::mem::offset_of!(libc::tcp_info, tcpi_last_data_recv);
        info[at..at + 4].copy_from_slice(&1234u32.to_ne_bytes());
        assert_eq!(last_data_recv(&info), Some(1234));
        assert_eq!(last_data_recv(&info[..at + 2]), None, "a struct cut short");
    }
}
