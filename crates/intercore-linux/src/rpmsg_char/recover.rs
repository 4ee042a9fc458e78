//! Recovery after the remote went away and came back.

use super::*;

/// Recovery.
impl KernelRpmsg {
    /// Re-attaches after the remote went away and came back (remoteproc's `crashed`, then
    /// its recovery, or a stop and start): the kernel unregistered the remote's rpmsg
    /// device — every endpoint gives `EPIPE`, `/dev/rpmsg_ctrlN` disappeared — and
    /// registers it again when the firmware is back, as a new virtio device whose control
    /// device may carry another number.
    ///
    /// Closes every open channel (destroying the endpoint devices the kernel did not),
    /// then waits up to `timeout` for a *new* control device of the same remote: one whose
    /// virtio device has the same parent (the remoteproc device) as the old one, and
    /// which is not the old node itself (not the same inode under the same name). Without
    /// a known parent (an unexpected sysfs layout) the old name coming back, or else the
    /// only control device there is, is taken. Returns the channels that were open as
    /// `(name, remote address)`, for the caller to open again once the services are
    /// re-announced ([`Self::wait_service`]; the remote's addresses may have changed).
    pub fn reconnect(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Vec<(String, u32)>, RpmsgCharError> {
        let mut was_open: Vec<(String, u32)> = Vec::new();
        for (_, ep) in self.eps.drain() {
            was_open.push((ep.name.clone(), ep.remote));
            let _ = Self::destroy(&*self.os, ep);
        }
        was_open.sort();
        let old_node = node_id(&self.paths.ctrl_dev());
        let old_name = self.paths.ctrl.clone();
        let old_parent = self
            .vdev
            .as_ref()
            .and_then(|v| v.parent().map(Path::to_path_buf));
        let old_ctrl_node = self.ctrl_node.take();
        if let Some(fd) = self.ctrl.take() {
            self.os.close(fd);
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut pause = Duration::from_millis(1);
        loop {
            let ctrls = list_ctrls(&self.paths.dev);
            let pick = ctrls.iter().find(|c| {
                let node = node_id(&self.paths.dev.join(c));
                if node.is_none() || (**c == old_name && node == old_ctrl_node.or(old_node)) {
                    return false;
                }
                match &old_parent {
                    Some(parent) => vdev_of_ctrl(&self.paths.class_dir().join(c))
                        .is_some_and(|v| v.parent() == Some(parent.as_path())),
                    None => **c == old_name || ctrls.len() == 1,
                }
            });
            if let Some(c) = pick.cloned() {
                let mut paths = self.paths.clone();
                paths.ctrl = c;
                match Self::open_ctrl(&*self.os, &paths) {
                    Ok((fd, node)) => {
                        self.ctrl_sys = paths.class_dir().join(&paths.ctrl);
                        self.vdev = vdev_of_ctrl(&self.ctrl_sys);
                        self.paths = paths;
                        self.ctrl = Some(fd);
                        self.ctrl_node = node;
                        return Ok(was_open);
                    }
                    // Still being torn down or set up: try again until the deadline.
                    Err(RpmsgCharError::NoCtrl { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // Without a control device: later calls report the link as gone.
                return Err(RpmsgCharError::NoCtrl {
                    path: self.paths.ctrl_dev(),
                    available: ctrls,
                });
            }
            sleep_until(&mut pause, deadline, Duration::from_millis(20));
        }
    }
}
