//! The data path: one message per `write(2)` / `read(2)`, with timeouts.

use super::*;

impl KernelRpmsg {
    /// Sends one message (one `write(2)`), waiting up to `timeout` (`None`: no limit)
    /// for a transmit buffer.
    pub fn send_timeout(
        &mut self,
        ch: &Channel,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        let max = self.max_payload;
        if data.len() > max {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                max,
            });
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        self.endpoint(ch)?;
        let Self { os, eps, .. } = self;
        let ep = eps.get_mut(&ch.local).expect("checked above");
        let fd = ep.fd.as_ref().expect("open endpoint has a descriptor");
        let mut pause = Duration::from_micros(100);
        loop {
            let e = match os.write(fd.as_fd(), data) {
                Ok(n) if n == data.len() => return Ok(()),
                // rpmsg_eptdev_write_iter returns the whole length or an error.
                Ok(_) => return Err(Error::Os(libc::EIO)),
                Err(e) => e,
            };
            match errno(&e) {
                libc::EINTR => continue,
                libc::EMSGSIZE => {
                    // The kernel's buffers are smaller than configured.
                    return Err(Error::MessageTooLarge {
                        len: data.len(),
                        max: data.len().saturating_sub(1).min(max),
                    });
                }
                libc::EAGAIN => {}
                _ => {
                    let err = link_error(&e);
                    if err == Error::PeerGone {
                        ep.gone = true;
                    }
                    return Err(err);
                }
            }
            // Every transmit buffer is with the remote (see the module documentation).
            let mut slice = pause;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::Timeout);
                }
                slice = slice.min(d - now);
            }
            match os.poll(fd.as_fd(), libc::POLLOUT, Some(slice)) {
                // POLLERR: the next write reports why (EPIPE).
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(link_error(&e)),
            }
            pause = (pause * 2).min(Duration::from_millis(2));
        }
    }

    /// Receives one message (one `read(2)`) into `buf`, waiting up to `timeout` (`None`:
    /// no limit). A message longer than `buf` is consumed: `buf` gets its start and the
    /// result is `Error::Truncated` with its full length.
    pub fn recv_timeout(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<usize, Error> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        self.endpoint(ch)?;
        let Self {
            os, eps, scratch, ..
        } = self;
        let ep = eps.get_mut(&ch.local).expect("checked above");
        let fd = ep.fd.as_ref().expect("open endpoint has a descriptor");
        loop {
            let e = match os.read(fd.as_fd(), scratch) {
                Ok(n) => {
                    let k = n.min(buf.len());
                    buf[..k].copy_from_slice(&scratch[..k]);
                    return if k < n {
                        Err(Error::Truncated { len: n })
                    } else {
                        Ok(n)
                    };
                }
                Err(e) => e,
            };
            match errno(&e) {
                libc::EINTR => continue,
                libc::EAGAIN => {}
                _ => {
                    let err = link_error(&e);
                    if err == Error::PeerGone {
                        ep.gone = true;
                    }
                    return Err(err);
                }
            }
            let left = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Error::Timeout);
                    }
                    Some(d - now)
                }
                None => None,
            };
            match os.poll(fd.as_fd(), libc::POLLIN, left) {
                // Readable, POLLERR (the read says EPIPE) or the deadline (checked above).
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(link_error(&e)),
            }
        }
    }
}
