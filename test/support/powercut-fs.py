#!/usr/bin/python3
"""A file system that loses what was not flushed, for power-cut tests.

    powercut-fs.py BACKING MOUNTPOINT

A FUSE passthrough to BACKING (fusepy; Debian's python3-fusepy) that keeps
every write in memory, per inode and 4 KiB page, until fsync/fdatasync
writes the file's pages through to BACKING. SIGUSR1 is the power cut: a
random half of the unflushed pages reach BACKING (the disk wrote some of its
cache back, in no particular order), the rest is lost, and the process exits
at once; the test then unmounts and mounts BACKING again.

Metadata (create, rename, unlink, mkdir, symlink, chmod) goes to BACKING at
once, as if journalled synchronously: this layer tests what happens to data.
"""
import errno
import os
import random
import signal
import sys
import threading

from fusepy import FUSE, FuseOSError, Operations

PAGE = 4096


class PowerCutFS(Operations):
    def __init__(self, root):
        self.root = root
        # inode -> {"fd": a writable descriptor kept open, "pages": {n: bytearray}, "size": logical size}
        self.dirty = {}
        self.mutex = threading.Lock()

    def _real(self, path):
        return os.path.join(self.root, path.lstrip('/'))

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except OSError as err:
            raise FuseOSError(err.errno or errno.EIO)

    # Metadata: straight through
    def getattr(self, path, fh=None):
        st = self._call(os.lstat, self._real(path))
        attrs = {key: getattr(st, key) for key in ('st_atime', 'st_ctime', 'st_gid', 'st_mode', 'st_mtime', 'st_nlink', 'st_size', 'st_uid', 'st_ino')}
        entry = self.dirty.get(st.st_ino)
        if entry is not None:
            attrs['st_size'] = entry['size']
        return attrs

    def readdir(self, path, fh):
        return ['.', '..'] + self._call(os.listdir, self._real(path))

    def readlink(self, path):
        return self._call(os.readlink, self._real(path))

    def mknod(self, path, mode, dev):
        self._call(os.mknod, self._real(path), mode, dev)

    def mkdir(self, path, mode):
        self._call(os.mkdir, self._real(path), mode)

    def rmdir(self, path):
        self._call(os.rmdir, self._real(path))

    def unlink(self, path):
        self._call(os.unlink, self._real(path))

    def symlink(self, target, source):
        self._call(os.symlink, source, self._real(target))

    def link(self, target, source):
        self._call(os.link, self._real(source), self._real(target))

    def rename(self, old, new):
        self._call(os.rename, self._real(old), self._real(new))

    def chmod(self, path, mode):
        self._call(os.chmod, self._real(path), mode)

    def chown(self, path, uid, gid):
        self._call(os.chown, self._real(path), uid, gid)

    def utimens(self, path, times=None):
        self._call(os.utime, self._real(path), times)

    def access(self, path, mode):
        if not os.access(self._real(path), mode):
            raise FuseOSError(errno.EACCES)

    def statfs(self, path):
        st = self._call(os.statvfs, self._real(path))
        return {key: getattr(st, key) for key in ('f_bavail', 'f_bfree', 'f_blocks', 'f_bsize', 'f_favail', 'f_ffree', 'f_files', 'f_flag', 'f_frsize', 'f_namemax')}

    # Data: held in memory until flushed
    def open(self, path, flags):
        fd = self._call(os.open, self._real(path), (flags & ~(os.O_WRONLY | os.O_RDONLY | os.O_APPEND)) | os.O_RDWR)
        if flags & os.O_TRUNC:
            self._forget(os.fstat(fd).st_ino)
        return fd

    def create(self, path, mode, fi=None):
        return self._call(os.open, self._real(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)

    def _entry(self, fh):
        st = os.fstat(fh)
        entry = self.dirty.get(st.st_ino)
        if entry is None:
            entry = {'fd': os.dup(fh), 'pages': {}, 'size': st.st_size}
            self.dirty[st.st_ino] = entry
        return entry

    def _page(self, entry, n):
        page = entry['pages'].get(n)
        if page is None:
            page = bytearray(os.pread(entry['fd'], PAGE, n * PAGE).ljust(PAGE, b'\0'))
            entry['pages'][n] = page
        return page

    def read(self, path, size, offset, fh):
        with self.mutex:
            entry = self.dirty.get(os.fstat(fh).st_ino)
            if entry is None:
                return os.pread(fh, size, offset)
            size = max(0, min(size, entry['size'] - offset))
            out = bytearray()
            while len(out) < size:
                at = offset + len(out)
                n, skip = divmod(at, PAGE)
                page = entry['pages'].get(n)
                chunk = page[skip:] if page is not None else os.pread(fh, PAGE - skip, at).ljust(PAGE - skip, b'\0')
                out += chunk[: size - len(out)]
            return bytes(out)

    def write(self, path, data, offset, fh):
        with self.mutex:
            entry = self._entry(fh)
            done = 0
            while done < len(data):
                n, skip = divmod(offset + done, PAGE)
                take = min(PAGE - skip, len(data) - done)
                self._page(entry, n)[skip : skip + take] = data[done : done + take]
                done += take
            entry['size'] = max(entry['size'], offset + len(data))
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            st = self._call(os.lstat, self._real(path))
            self._write_back(st.st_ino)
            self._call(os.truncate, self._real(path), length)

    def fsync(self, path, datasync, fh):
        with self.mutex:
            self._write_back(os.fstat(fh).st_ino)
            os.fsync(fh)

    def fsyncdir(self, path, datasync, fh):
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)

    def _write_back(self, ino, keep=lambda n: True):
        entry = self.dirty.pop(ino, None)
        if entry is None:
            return
        for n, page in entry['pages'].items():
            if keep(n):
                length = max(0, min(PAGE, entry['size'] - n * PAGE))
                os.pwrite(entry['fd'], bytes(page[:length]), n * PAGE)
        os.close(entry['fd'])

    def _forget(self, ino):
        entry = self.dirty.pop(ino, None)
        if entry is not None:
            os.close(entry['fd'])

    def power_cut(self):
        """Some unflushed pages made it to the disk, the rest did not"""
        with self.mutex:
            for ino in list(self.dirty):
                self._write_back(ino, keep=lambda n: random.random() < 0.5)
            os.sync()
            os._exit(0)


def main():
    backing, mountpoint = sys.argv[1], sys.argv[2]
    fs = PowerCutFS(os.path.realpath(backing))
    # Waited for in a thread of its own: the FUSE loop may be idle when the power goes
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    threading.Thread(target=lambda: (signal.sigwait({signal.SIGUSR1}), fs.power_cut()), daemon=True).start()
    FUSE(fs, mountpoint, foreground=True, nothreads=True, allow_other=True, default_permissions=True, use_ino=True)


if __name__ == '__main__':
    main()
