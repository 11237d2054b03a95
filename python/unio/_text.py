"""Text file objects: io.TextIOWrapper's behaviour over a unio BinaryFile, awaitable.

Decoding, newline translation, readline's line endings and the tell()/seek() cookies are
io.TextIOWrapper's, and so is the code's shape: it follows CPython's Lib/_pyio.py TextIOWrapper
(incremental decoder wrapped in io.IncrementalNewlineDecoder, snapshots for tell), with the
buffer's I/O awaited, and its tell() cookies are the C TextIOWrapper's. Writes are encoded and written through at once.
"""

import codecs
import io
import locale
import os

from ._file import AsyncFileProtocol

_CHUNK_SIZE = 8192  # what the C TextIOWrapper reads at a time


def _text_encoding(encoding):
    encoding = io.text_encoding(encoding, 3)
    if encoding == "locale":
        encoding = locale.getpreferredencoding(False)
    if not isinstance(encoding, str):
        raise ValueError(f"invalid encoding: {encoding!r}")
    if not codecs.lookup(encoding)._is_text_encoding:
        raise LookupError(f"{encoding!r} is not a text encoding; use codecs.open() to handle arbitrary codecs")
    return encoding


def check_newline(newline):
    if newline is not None and not isinstance(newline, str):
        raise TypeError(f"illegal newline type: {type(newline)!r}")
    if newline not in (None, "", "\n", "\r", "\r\n"):
        raise ValueError(f"illegal newline value: {newline}")


class TextFile(AsyncFileProtocol):
    """A file opened by unio.open() in a text mode (aiofiles' AsyncTextIOWrapper)."""

    def __init__(self, buffer, encoding=None, errors=None, newline=None, line_buffering=False, mode="r"):
        check_newline(newline)
        self._encoding = _text_encoding(encoding)
        if errors is None:
            errors = "strict"
        elif not isinstance(errors, str):
            raise ValueError(f"invalid errors: {errors!r}")
        self._errors = errors
        self._buffer = buffer
        self._mode = mode
        self._line_buffering = line_buffering
        self._decoded_chars = ""
        self._decoded_chars_used = 0
        self._snapshot = None  # (dec_flags, next_input): see _read_chunk
        self._seekable = self._telling = buffer._seekable
        self._encoder = None
        self._decoder = None
        self._b2cratio = 0.0
        self._readuniversal = not newline
        self._readtranslate = newline is None
        self._readnl = newline
        self._writetranslate = newline != ""
        self._writenl = newline or os.linesep
        if self._seekable and buffer._writable:
            if buffer._logical_pos() != 0:  # no BOM in the middle of a file
                try:
                    self._get_encoder().setstate(0)
                except LookupError:
                    pass

    # ---- properties and synchronous methods ----
    @property
    def buffer(self):
        return self._buffer

    @property
    def name(self):
        return self._buffer.name

    @property
    def mode(self):
        return self._mode

    @property
    def closed(self):
        return self._buffer.closed

    @property
    def encoding(self):
        return self._encoding

    @property
    def errors(self):
        return self._errors

    @property
    def line_buffering(self):
        return self._line_buffering

    @property
    def newlines(self):
        return getattr(self._decoder, "newlines", None) if self._decoder else None

    def fileno(self):
        return self._buffer.fileno()

    def readable(self):
        return self._buffer.readable()

    def __repr__(self):
        return f"<unio.TextFile name={self.name!r} mode={self._mode!r} encoding={self._encoding!r}>"

    def _check_open(self, msg="I/O operation on closed file."):
        if self._buffer.closed:
            raise ValueError(msg)

    def _check_readable(self):
        self._check_open()
        if not self._buffer._readable:
            raise io.UnsupportedOperation("not readable")

    # ---- the decoder (as _pyio) ----
    def _get_encoder(self):
        self._encoder = codecs.getincrementalencoder(self._encoding)(self._errors)
        return self._encoder

    def _get_decoder(self):
        decoder = codecs.getincrementaldecoder(self._encoding)(self._errors)
        if self._readuniversal:
            decoder = io.IncrementalNewlineDecoder(decoder, self._readtranslate)
        self._decoder = decoder
        return decoder

    def _set_decoded_chars(self, chars):
        self._decoded_chars = chars
        self._decoded_chars_used = 0

    def _get_decoded_chars(self, n=None):
        offset = self._decoded_chars_used
        if n is None:
            chars = self._decoded_chars[offset:]
        else:
            chars = self._decoded_chars[offset:offset + n]
        self._decoded_chars_used += len(chars)
        return chars

    async def _read_chunk(self):
        """Reads and decodes the next chunk into _decoded_chars; False at end of file."""
        if self._telling:
            dec_buffer, dec_flags = self._decoder.getstate()
        input_chunk = await self._buffer.read1(_CHUNK_SIZE)
        eof = not input_chunk
        decoded_chars = self._decoder.decode(input_chunk, eof)
        self._set_decoded_chars(decoded_chars)
        self._b2cratio = len(input_chunk) / len(decoded_chars) if decoded_chars else 0.0
        if self._telling:
            self._snapshot = (dec_flags, dec_buffer + input_chunk)
        return not eof

    # ---- reading ----
    async def read(self, size=-1):
        self._check_readable()
        size = -1 if size is None else size.__index__()
        decoder = self._decoder or self._get_decoder()
        if size < 0:
            result = self._get_decoded_chars() + decoder.decode(await self._buffer.read(), final=True)
            self._set_decoded_chars("")
            self._snapshot = None
            return result
        eof = False
        result = self._get_decoded_chars(size)
        while len(result) < size and not eof:
            eof = not await self._read_chunk()
            result += self._get_decoded_chars(size - len(result))
        return result

    async def readline(self, size=-1):
        self._check_open("read from closed file")
        self._check_readable()
        size = -1 if size is None else size.__index__()
        line = self._get_decoded_chars()
        start = 0
        if not self._decoder:
            self._get_decoder()
        while True:
            endpos = self._line_end(line, start)
            if endpos >= 0:
                break
            start = len(line)
            if size >= 0 and len(line) >= size:
                endpos = size
                break
            while await self._read_chunk():
                if self._decoded_chars:
                    break
            if self._decoded_chars:
                line += self._get_decoded_chars()
            else:
                self._set_decoded_chars("")
                self._snapshot = None
                return line
        if size >= 0 and endpos > size:
            endpos = size
        self._decoded_chars_used -= len(line) - endpos  # rewind to just after the line
        return line[:endpos]

    def _line_end(self, line, start):
        """Where the first line of line[start:] ends (after its ending), or -1."""
        if self._readtranslate:
            pos = line.find("\n", start)
            return pos + 1 if pos >= 0 else -1
        if self._readuniversal:
            nlpos = line.find("\n", start)
            crpos = line.find("\r", start)
            if crpos == -1:
                return nlpos + 1 if nlpos >= 0 else -1
            if nlpos == -1 or nlpos > crpos + 1:
                return crpos + 1
            if nlpos < crpos:
                return nlpos + 1
            return crpos + 2  # \r\n (the decoder never splits it)
        pos = line.find(self._readnl, start)
        return pos + len(self._readnl) if pos >= 0 else -1

    async def readlines(self, hint=-1):
        hint = -1 if hint is None else hint.__index__()
        lines, total = [], 0
        while True:
            line = await self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    # ---- writing ----
    async def write(self, s):
        self._check_open("write to closed file")
        if not self._buffer._writable:
            raise io.UnsupportedOperation("not writable")
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        length = len(s)
        if self._writetranslate and self._writenl != "\n" and "\n" in s:
            s = s.replace("\n", self._writenl)
        encoder = self._encoder or self._get_encoder()
        b = encoder.encode(s)
        self._set_decoded_chars("")
        self._snapshot = None
        if self._decoder:
            self._decoder.reset()
        await self._buffer.write(b)
        return length

    async def writelines(self, lines):
        await self.write("".join(lines))

    async def flush(self):
        self._check_open("flush of closed file")
        self._telling = self._seekable

    async def truncate(self, pos=None):
        await self.flush()
        if pos is None:
            pos = await self.tell()
        return await self._buffer.truncate(pos)

    async def close(self):
        await self._buffer.close()

    async def seekable(self):
        self._check_open()
        return self._seekable

    async def writable(self):
        self._check_open()
        return self._buffer._writable

    async def isatty(self):
        return await self._buffer.isatty()

    # ---- position: _pyio's cookies ----
    # Cookies are laid out as the C TextIOWrapper's (a little-endian struct of start_pos: 8 bytes,
    # dec_flags, bytes_to_feed, chars_to_skip: 4 bytes each, need_eof: 1 byte), so a cookie from
    # unio's tell() equals the built-in file's.
    @staticmethod
    def _pack_cookie(position, dec_flags=0, bytes_to_feed=0, need_eof=False, chars_to_skip=0):
        return (position | ((dec_flags & 0xFFFFFFFF) << 64) | (bytes_to_feed << 96) | (chars_to_skip << 128)
                | (bool(need_eof) << 160))

    @staticmethod
    def _unpack_cookie(bigint):
        if bigint >> 168:
            raise OverflowError("int too big to convert")
        position = bigint & 0xFFFFFFFFFFFFFFFF
        dec_flags = (bigint >> 64) & 0xFFFFFFFF
        if dec_flags >= 1 << 31:
            dec_flags -= 1 << 32
        bytes_to_feed = (bigint >> 96) & 0xFFFFFFFF
        chars_to_skip = (bigint >> 128) & 0xFFFFFFFF
        need_eof = bool((bigint >> 160) & 0xFF)
        return position, dec_flags, bytes_to_feed, need_eof, chars_to_skip

    async def tell(self):
        self._check_open()
        if not self._seekable:
            raise io.UnsupportedOperation("underlying stream is not seekable")
        if not self._telling:
            raise OSError("telling position disabled by next() call")
        position = await self._buffer.tell()
        decoder = self._decoder
        if decoder is None or self._snapshot is None:
            return position
        dec_flags, next_input = self._snapshot
        position -= len(next_input)
        chars_to_skip = self._decoded_chars_used
        if chars_to_skip == 0:
            return self._pack_cookie(position, dec_flags)
        saved_state = decoder.getstate()
        try:
            return self._reconstruct(decoder, position, dec_flags, next_input, chars_to_skip)
        finally:
            decoder.setstate(saved_state)

    def _reconstruct(self, decoder, position, dec_flags, next_input, chars_to_skip):
        """The cookie of the point chars_to_skip characters after the snapshot (as _pyio)."""
        skip_bytes = int(self._b2cratio * chars_to_skip)
        skip_back = 1
        while skip_bytes > 0:
            decoder.setstate((b"", dec_flags))
            n = len(decoder.decode(next_input[:skip_bytes]))
            if n <= chars_to_skip:
                b, d = decoder.getstate()
                if not b:
                    dec_flags = d
                    chars_to_skip -= n
                    break
                skip_bytes -= len(b)
                skip_back = 1
            else:
                skip_bytes -= skip_back
                skip_back = skip_back * 2
        else:
            skip_bytes = 0
            decoder.setstate((b"", dec_flags))
        start_pos = position + skip_bytes
        start_flags = dec_flags
        if chars_to_skip == 0:
            return self._pack_cookie(start_pos, start_flags)
        bytes_fed = 0
        need_eof = False
        chars_decoded = 0
        for i in range(skip_bytes, len(next_input)):
            bytes_fed += 1
            chars_decoded += len(decoder.decode(next_input[i:i + 1]))
            dec_buffer, dec_flags = decoder.getstate()
            if not dec_buffer and chars_decoded <= chars_to_skip:
                start_pos += bytes_fed
                chars_to_skip -= chars_decoded
                start_flags, bytes_fed, chars_decoded = dec_flags, 0, 0
            if chars_decoded >= chars_to_skip:
                break
        else:
            chars_decoded += len(decoder.decode(b"", final=True))
            need_eof = True
            if chars_decoded < chars_to_skip:
                raise OSError("can't reconstruct logical file position")
        return self._pack_cookie(start_pos, start_flags, bytes_fed, need_eof, chars_to_skip)

    def _reset_encoder(self, position):
        try:
            encoder = self._encoder or self._get_encoder()
        except LookupError:
            return
        if position != 0:
            encoder.setstate(0)
        else:
            encoder.reset()

    async def seek(self, cookie, whence=os.SEEK_SET):
        self._check_open("tell on closed file")
        if not self._seekable:
            raise io.UnsupportedOperation("underlying stream is not seekable")
        if whence == os.SEEK_CUR:
            if cookie != 0:
                raise io.UnsupportedOperation("can't do nonzero cur-relative seeks")
            whence = os.SEEK_SET
            cookie = await self.tell()
        elif whence == os.SEEK_END:
            if cookie != 0:
                raise io.UnsupportedOperation("can't do nonzero end-relative seeks")
            position = await self._buffer.seek(0, whence)
            self._set_decoded_chars("")
            self._snapshot = None
            if self._decoder:
                self._decoder.reset()
            self._reset_encoder(position)
            return position
        if whence != os.SEEK_SET:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if cookie < 0:
            raise ValueError(f"negative seek position {cookie!r}")
        start_pos, dec_flags, bytes_to_feed, need_eof, chars_to_skip = self._unpack_cookie(cookie)
        await self._buffer.seek(start_pos)
        self._set_decoded_chars("")
        self._snapshot = None
        if cookie == 0 and self._decoder:
            self._decoder.reset()
        elif self._decoder or dec_flags or chars_to_skip:
            self._decoder = self._decoder or self._get_decoder()
            self._decoder.setstate((b"", dec_flags))
            self._snapshot = (dec_flags, b"")
        if chars_to_skip:
            input_chunk = await self._buffer.read(bytes_to_feed)
            self._set_decoded_chars(self._decoder.decode(input_chunk, need_eof))
            self._snapshot = (dec_flags, input_chunk)
            if len(self._decoded_chars) < chars_to_skip:
                raise OSError("can't restore logical file position")
            self._decoded_chars_used = chars_to_skip
        self._reset_encoder(cookie)
        return cookie
