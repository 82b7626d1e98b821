// A tiny SMTP sink on a local socket (node:net) that keeps every message it receives: enough of
// SMTP for the server's lettre client (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS).
import { createServer } from 'node:net';

function decodeQuotedPrintable(body) {
  const joined = body.replace(/=\r?\n/g, '');
  const bytes = [];
  for (let i = 0; i < joined.length; i++) {
    if (joined[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(joined.slice(i + 1, i + 3))) {
      bytes.push(parseInt(joined.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(joined[i], 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** A received message with helpers to read it. */
export class Mail {
  constructor(to, raw) {
    this.to = to;
    this.raw = raw;
  }

  header(name) {
    const head = this.raw.split('\r\n\r\n')[0];
    const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
    return line ? line.slice(name.length + 1).trim() : undefined;
  }

  get subject() {
    return this.header('Subject') ?? '';
  }

  part(contentType) {
    for (const part of this.raw.split('\r\n--')) {
      const at = part.indexOf('\r\n\r\n');
      if (at < 0) continue;
      const head = part.slice(0, at).toLowerCase();
      if (!head.includes(`content-type: ${contentType}`)) continue;
      const body = part.slice(at + 4).split('\r\n--')[0];
      if (head.includes('content-transfer-encoding: base64')) {
        return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
      }
      if (head.includes('content-transfer-encoding: quoted-printable')) return decodeQuotedPrintable(body);
      return body;
    }
    throw new Error(`no ${contentType} part in:\n${this.raw}`);
  }

  get text() {
    return this.part('text/plain');
  }

  /** The first link in the text part. */
  get link() {
    const m = this.text.match(/https?:\/\/\S+/);
    if (!m) throw new Error(`no link in: ${this.text}`);
    return m[0];
  }

  /** The code after "code: ". */
  get code() {
    const m = this.text.match(/code: (\d+)/);
    if (!m) throw new Error(`no code in: ${this.text}`);
    return m[1];
  }
}

/** Starts the sink on 127.0.0.1 and a free port. Resolves to { port, messages, lastTo(addr), close() }. */
export async function startSmtpSink() {
  const messages = [];
  const sockets = new Set();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setEncoding('utf8');
    let buffer = '';
    let inData = false;
    let data = '';
    let to = [];
    const reply = (line) => socket.write(`${line}\r\n`);
    socket.on('data', (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl + 1);
        buffer = buffer.slice(nl + 1);
        if (inData) {
          if (line === '.\r\n' || line === '.\n') {
            messages.push(new Mail(to, data));
            to = [];
            data = '';
            inData = false;
            reply('250 queued');
          } else {
            data += line.startsWith('.') ? line.slice(1) : line;
          }
          continue;
        }
        const command = line.trim();
        const upper = command.toUpperCase();
        if (upper.startsWith('EHLO')) socket.write('250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n');
        else if (upper.startsWith('HELO') || upper.startsWith('NOOP')) reply('250 ok');
        else if (upper.startsWith('MAIL FROM') || upper.startsWith('RSET')) {
          to = [];
          reply('250 ok');
        } else if (upper.startsWith('RCPT TO')) {
          to.push(command.slice(8).trim().replace(/^<|>$/g, ''));
          reply('250 ok');
        } else if (upper === 'DATA') {
          inData = true;
          reply('354 go ahead');
        } else if (upper.startsWith('QUIT')) {
          reply('221 bye');
          socket.end();
        } else reply('502 not implemented');
      }
    });
    socket.on('error', () => {});
    reply('220 sink ESMTP ready');
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  const { port } = server.address();
  return {
    port,
    messages,
    to: (address) => messages.filter((m) => m.to.some((t) => t.toLowerCase() === address.toLowerCase())),
    /** The newest message to `address` (waits up to 2 s). */
    async lastTo(address) {
      for (let i = 0; i < 100; i++) {
        const found = messages.filter((m) => m.to.some((t) => t.toLowerCase() === address.toLowerCase()));
        if (found.length) return found[found.length - 1];
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no mail to ${address}; have ${JSON.stringify(messages.map((m) => m.to))}`);
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((res) => server.close(() => res()));
    },
  };
}
