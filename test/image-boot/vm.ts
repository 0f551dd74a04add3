/**
 * The appliance image under full system emulation: qemu-system-aarch64 -M
 * virt with the kernel and initrd taken from the image's own boot partition
 * (QEMU cannot run the Pi's GPU bootloader), the image's kernel command line
 * with its consoles moved to the virt board's UART, and user-mode networking
 * whose only ways in are host forwards on 127.0.0.1. The serial console is
 * the test's screen and keyboard.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { ok } from '../image/image-files.js';

export interface BootFiles {
  kernel: string;
  initrd: string;
  /** cmdline.txt with the Pi's consoles replaced by ttyAMA0 */
  append: string;
}

export interface Forward {
  guest: number;
  host: number;
}

/** The kernel, initrd and command line config.txt and cmdline.txt name on the boot partition at `bootOffset` */
export function bootFilesOf(image: string, bootOffset: number, dir: string): BootFiles {
  const boot = `${image}@@${bootOffset}`;
  const config = ok('mtype', ['-i', boot, '::/config.txt']);
  const kernel = /^kernel=(\S+)$/m.exec(config)?.[1];
  const initrd = /^initramfs (\S+)/m.exec(config)?.[1];
  assert.ok(kernel && initrd, `config.txt names a kernel and an initrd:\n${config}`);
  ok('mcopy', ['-o', '-n', '-i', boot, `::/${kernel}`, `${dir}/kernel`]);
  ok('mcopy', ['-o', '-n', '-i', boot, `::/${initrd}`, `${dir}/initrd`]);
  const cmdline = ok('mtype', ['-i', boot, '::/cmdline.txt']).trim();
  const append = [
    ...cmdline.split(/\s+/).filter((word) => !word.startsWith('console=')),
    'console=ttyAMA0,115200',
  ].join(' ');
  return { kernel: `${dir}/kernel`, initrd: `${dir}/initrd`, append };
}

export class Vm {
  /** Everything the serial console printed, \r dropped */
  console = '';
  readonly startedAt = performance.now();
  readonly exited: Promise<void>;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly listeners = new Set<() => void>();
  private commands = 0;

  constructor(
    image: string,
    files: BootFiles,
    forwards: readonly Forward[],
    private readonly monitorSocket: string,
  ) {
    const hostfwd = forwards.map((f) => `hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`).join(',');
    this.child = spawn('qemu-system-aarch64', [
      '-M',
      'virt',
      '-cpu',
      'cortex-a53',
      '-m',
      '1024',
      '-smp',
      '2',
      '-nodefaults',
      '-display',
      'none',
      '-serial',
      'stdio',
      '-monitor',
      `unix:${monitorSocket},server=on,wait=off`,
      '-kernel',
      files.kernel,
      '-initrd',
      files.initrd,
      '-append',
      files.append,
      '-drive',
      `file=${image},format=raw,if=none,id=card`,
      '-device',
      'virtio-blk-pci,drive=card',
      '-netdev',
      `user,id=lan,${hostfwd}`, // No option ROM: QEMU's network boot firmware is not needed (and not installed)
      '-device',
      'virtio-net-pci,netdev=lan,romfile=',
      '-device',
      'virtio-rng-pci',
    ]);
    this.child.stdout.on('data', (chunk: Buffer) => this.take(chunk));
    this.child.stderr.on('data', (chunk: Buffer) => this.take(chunk));
    this.exited = once(this.child, 'exit').then(() => undefined);
  }

  private take(chunk: Buffer): void {
    this.console += chunk.toString('latin1').replace(/\r/g, '');
    for (const wake of [...this.listeners]) wake();
  }

  /** The first match of `pattern` in console output after `from` (an index into `console`), bounded in time */
  waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(this.console.slice(from));
        if (!match) return false;
        done();
        match.index += from;
        resolve(match);
        return true;
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `No ${pattern} on the console within ${timeoutMs / 1000} s; its end:\n${this.console.slice(-3000)}`,
          ),
        );
      }, timeoutMs);
      const exited = () => {
        done();
        reject(
          new Error(
            `QEMU exited while waiting for ${pattern}; console end:\n${this.console.slice(-3000)}`,
          ),
        );
      };
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        this.child.off('exit', exited);
      };
      const listener = () => void check();
      if (check()) return;
      this.listeners.add(listener);
      this.child.once('exit', exited);
    });
  }

  /** Enter until getty asks for a name (a key typed before getty runs is lost; boot messages may follow its prompt) */
  private async loginPrompt(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const from = this.console.length;
      this.type('\n');
      try {
        await this.waitFor(/login: $/, 15_000, from);
        return;
      } catch (err) {
        if (performance.now() > deadline || !this.running) throw err;
      }
    }
  }

  /** The power button (QEMU's monitor): logind shuts the box down cleanly */
  async pressPowerButton(): Promise<void> {
    const monitor = createConnection(this.monitorSocket);
    await once(monitor, 'connect');
    monitor.end('system_powerdown\n');
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  type(text: string): void {
    this.child.stdin.write(text);
  }

  /** Logs in on the serial console; resolves with what the console said after the password */
  async login(user: string, password: string, timeoutMs = 180_000): Promise<string> {
    await this.loginPrompt(timeoutMs);
    const afterPrompt = this.console.length;
    this.type(`${user}\n`);
    await this.waitFor(/Password: $/, 30_000, afterPrompt);
    const afterPassword = this.console.length;
    this.type(`${password}\n`);
    const verdict = await this.waitFor(/(Login incorrect|# $)/, 60_000, afterPassword);
    const said = this.console.slice(afterPassword, verdict.index + verdict[0].length);
    // A plain shell for the test: no echo, no line editing, no prompt, no kernel chatter, no pager
    if (verdict[1] !== 'Login incorrect')
      await this.sh(
        'stty -echo; set +o emacs +o vi; PS1=; PS2=; dmesg -n 1; export SYSTEMD_PAGER= SYSTEMD_COLORS=0 PAGER=cat',
      );
    return said;
  }

  /** Runs a shell command as the logged-in root; its output (without echo) and exit status */
  async sh(command: string, timeoutMs = 120_000): Promise<{ out: string; code: number }> {
    const n = ++this.commands;
    const from = this.console.length;
    // The end marker is made by the shell, so an echo of the command never matches it
    this.type(`${command}; echo "@@$((${n} * 1)):$?@@"\n`);
    const end = await this.waitFor(new RegExp(`@@${n}:(\\d+)@@\\n`), timeoutMs, from);
    // Kernel and journal lines on the console ("[   97.44] welcome[556]: ...") are not the command's
    const out = this.console
      .slice(from, end.index)
      .split('\n')
      .filter((line) => !/^\[ *\d+\.\d+\] /.test(line))
      .join('\n');
    return { out, code: Number(end[1]) };
  }

  /** Runs `command` and insists on exit status 0; its output */
  async must(command: string, timeoutMs?: number): Promise<string> {
    const result = await this.sh(command, timeoutMs);
    assert.equal(result.code, 0, `${command}\n${result.out}`);
    return result.out;
  }

  /** Pulls the plug: no shutdown, whatever the guest had not written is gone */
  async powerOff(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Seconds from power-on until the relay's SMTP greeting arrives through the forward, bounded */
export async function secondsToSmtp(vm: Vm, port: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && vm.running) {
    if (await greets(port)) return (performance.now() - vm.startedAt) / 1000;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(
    `No SMTP greeting on the forward within ${timeoutMs / 1000} s; console end:\n${vm.console.slice(-3000)}`,
  );
}

/** QEMU's forward accepts at once even while nothing listens in the guest: only a 220 counts */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let seen = '';
    const finish = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(5000, () => finish(false));
    socket.on('data', (chunk) => {
      seen += chunk.toString();
      if (/^220 /m.test(seen)) finish(true);
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(/^220 /m.test(seen)));
  });
}
