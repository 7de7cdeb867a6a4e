/* detak firmware-bridge protocol v1 -- reference encoder (see detak_bridge.h, docs/protocol.md). */
#include "detak_bridge.h"

#include <string.h>

#define DB_MAX_STRING 64u
#define DB_MAX_CHANNELS 32u
#define DB_MAX_ELECTRODES 32u

uint16_t db_crc16(const uint8_t *data, size_t len, uint16_t crc)
{
    size_t i;
    int bit;
    for (i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

/* ---- COBS, written incrementally ------------------------------------------------------- */

static void open_block(db_frame *f, uint8_t after_full)
{
    if (f->pos >= f->cap) {
        f->overflow = 1;
        return;
    }
    f->code_pos = f->pos++;
    f->code = 1;
    f->after_full = after_full;
}

static void cobs_byte(db_frame *f, uint8_t b)
{
    if (f->overflow) {
        return;
    }
    if (b == 0) {                      /* a zero closes the block: its code says where it was */
        f->out[f->code_pos] = f->code;
        open_block(f, 0);
        return;
    }
    if (f->pos >= f->cap) {
        f->overflow = 1;
        return;
    }
    f->out[f->pos++] = b;
    f->code++;
    if (f->code == 0xFFu) {            /* 254 data bytes: full block, no implied zero */
        f->out[f->code_pos] = f->code;
        open_block(f, 1);
    }
}

void db_frame_begin(db_frame *f, uint8_t *out, size_t cap)
{
    f->out = out;
    f->cap = cap;
    f->pos = 0;
    f->overflow = 0;
    f->crc = DB_CRC_INIT;
    open_block(f, 0);
}

void db_frame_put(db_frame *f, const uint8_t *data, size_t n)
{
    size_t i;
    f->crc = db_crc16(data, n, f->crc);
    for (i = 0; i < n; i++) {
        cobs_byte(f, data[i]);
    }
}

size_t db_frame_end(db_frame *f)
{
    uint16_t crc = f->crc;
    cobs_byte(f, (uint8_t)(crc >> 8));          /* CRC is sent big-endian (MSB first) */
    cobs_byte(f, (uint8_t)(crc & 0xFFu));
    if (f->overflow) {
        return 0;
    }
    if (f->code == 1 && f->after_full) {
        f->pos--;                               /* no empty block after a final full block */
    } else {
        f->out[f->code_pos] = f->code;
    }
    if (f->pos >= f->cap) {
        return 0;
    }
    f->out[f->pos++] = 0x00;                    /* frame delimiter */
    return f->pos;
}

size_t db_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    db_frame f;
    size_t i;
    db_frame_begin(&f, out, cap);
    for (i = 0; i < len; i++) {
        cobs_byte(&f, in[i]);
    }
    if (f.overflow) {
        return 0;
    }
    if (f.code == 1 && f.after_full) {
        f.pos--;
    } else {
        f.out[f.code_pos] = f.code;
    }
    return f.pos;
}

/* ---- little-endian field writers ------------------------------------------------------- */

static void put_u8(db_frame *f, uint8_t v) { db_frame_put(f, &v, 1); }

static void put_u16(db_frame *f, uint16_t v)
{
    uint8_t b[2];
    b[0] = (uint8_t)(v & 0xFFu);
    b[1] = (uint8_t)(v >> 8);
    db_frame_put(f, b, 2);
}

static void put_u32(db_frame *f, uint32_t v)
{
    uint8_t b[4];
    b[0] = (uint8_t)(v & 0xFFu);
    b[1] = (uint8_t)((v >> 8) & 0xFFu);
    b[2] = (uint8_t)((v >> 16) & 0xFFu);
    b[3] = (uint8_t)(v >> 24);
    db_frame_put(f, b, 4);
}

static void put_f32(db_frame *f, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);                   /* IEEE-754 binary32 */
    put_u32(f, u);
}

static int put_str(db_frame *f, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > DB_MAX_STRING) {
        return 0;
    }
    put_u8(f, (uint8_t)n);
    if (n) {
        db_frame_put(f, (const uint8_t *)s, n);
    }
    return 1;
}

static void put_header(db_frame *f, db_sender *s, uint8_t type)
{
    put_u8(f, DB_PROTOCOL_VERSION);
    put_u8(f, type);
    put_u16(f, s->seq);
}

static size_t finish(db_frame *f, db_sender *s)
{
    size_t n = db_frame_end(f);
    if (n) {
        s->seq = (uint16_t)(s->seq + 1u);
    }
    return n;
}

/* ---- messages ---------------------------------------------------------------------------- */

size_t db_encode_packet(db_sender *s, uint8_t type, const uint8_t *payload, size_t len,
                        uint8_t *out, size_t cap)
{
    db_frame f;
    db_frame_begin(&f, out, cap);
    put_header(&f, s, type);
    if (len) {
        db_frame_put(&f, payload, len);
    }
    return finish(&f, s);
}

size_t db_encode_device_info(db_sender *s, const db_device_info *info, uint8_t *out, size_t cap)
{
    db_frame f;
    unsigned i;
    if (info->n_channels < 1 || info->n_channels > DB_MAX_CHANNELS ||
        info->n_electrodes > DB_MAX_ELECTRODES ||
        (info->sample_format != DB_INT16 && info->sample_format != DB_INT24) ||
        info->adc_bits < 1 || info->adc_bits > 32 || info->sample_rate_mhz == 0 ||
        !(info->lsb_nv > 0.0f)) {
        return 0;
    }
    db_frame_begin(&f, out, cap);
    put_header(&f, s, DB_DEVICE_INFO);
    put_u8(&f, info->n_channels);
    put_u8(&f, info->adc_bits);
    put_u8(&f, info->sample_format);
    put_u8(&f, info->n_electrodes);
    put_u32(&f, info->sample_rate_mhz);
    put_f32(&f, info->lsb_nv);
    if (!put_str(&f, info->model) || !put_str(&f, info->firmware) || !put_str(&f, info->serial)) {
        return 0;
    }
    for (i = 0; i < info->n_channels; i++) {
        if (!put_str(&f, info->channels[i])) {
            return 0;
        }
    }
    for (i = 0; i < info->n_electrodes; i++) {
        if (!put_str(&f, info->electrodes[i])) {
            return 0;
        }
    }
    return finish(&f, s);
}

size_t db_encode_samples(db_sender *s, uint32_t first_sample, uint32_t timestamp_us,
                         uint8_t sample_format, uint8_t n_channels, uint8_t n_samples,
                         const int32_t *samples, uint8_t *out, size_t cap)
{
    db_frame f;
    size_t i, n = (size_t)n_channels * n_samples;
    int32_t lo = sample_format == DB_INT16 ? -32768 : -8388608;
    int32_t hi = sample_format == DB_INT16 ? 32767 : 8388607;
    if ((sample_format != DB_INT16 && sample_format != DB_INT24) || n_channels < 1 ||
        n_channels > DB_MAX_CHANNELS || n_samples < 1) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (samples[i] < lo || samples[i] > hi) {
            return 0;
        }
    }
    db_frame_begin(&f, out, cap);
    put_header(&f, s, DB_SAMPLES);
    put_u32(&f, first_sample);
    put_u32(&f, timestamp_us);
    put_u8(&f, sample_format);
    put_u8(&f, n_channels);
    put_u8(&f, n_samples);
    for (i = 0; i < n; i++) {
        uint32_t u = (uint32_t)samples[i];      /* two's complement, low bytes first */
        uint8_t b[3];
        b[0] = (uint8_t)(u & 0xFFu);
        b[1] = (uint8_t)((u >> 8) & 0xFFu);
        b[2] = (uint8_t)((u >> 16) & 0xFFu);
        db_frame_put(&f, b, sample_format);
    }
    return finish(&f, s);
}

size_t db_encode_lead_off(db_sender *s, uint32_t sample, uint32_t mask, uint8_t *out,
                          size_t cap)
{
    db_frame f;
    db_frame_begin(&f, out, cap);
    put_header(&f, s, DB_LEAD_OFF);
    put_u32(&f, sample);
    put_u32(&f, mask);
    return finish(&f, s);
}

size_t db_encode_cal_state(db_sender *s, uint32_t sample, uint8_t on, uint8_t *out, size_t cap)
{
    db_frame f;
    db_frame_begin(&f, out, cap);
    put_header(&f, s, DB_CAL_STATE);
    put_u32(&f, sample);
    put_u8(&f, on ? 1u : 0u);
    return finish(&f, s);
}

size_t db_encode_battery(db_sender *s, uint8_t percent, uint16_t millivolts, uint8_t charging,
                         uint8_t external_power, uint8_t *out, size_t cap)
{
    db_frame f;
    if (percent > 100 && percent != 255) {
        return 0;
    }
    db_frame_begin(&f, out, cap);
    put_header(&f, s, DB_BATTERY);
    put_u8(&f, percent);
    put_u16(&f, millivolts);
    put_u8(&f, (uint8_t)((charging ? 1u : 0u) | (external_power ? 2u : 0u)));
    return finish(&f, s);
}

size_t db_encode_error(db_sender *s, uint8_t code, uint32_t sample, const char *text,
                       uint8_t *out, size_t cap)
{
    db_frame f;
    db_frame_begin(&f, out, cap);
    put_header(&f, s, DB_ERROR);
    put_u8(&f, code);
    put_u32(&f, sample);
    if (text) {
        db_frame_put(&f, (const uint8_t *)text, strlen(text));
    }
    return finish(&f, s);
}

size_t db_encode_stream_end(db_sender *s, uint32_t next_sample, uint8_t reason, uint8_t *out,
                            size_t cap)
{
    db_frame f;
    db_frame_begin(&f, out, cap);
    put_header(&f, s, DB_STREAM_END);
    put_u32(&f, next_sample);
    put_u8(&f, reason);
    return finish(&f, s);
}

size_t db_encode_ack(db_sender *s, uint16_t acked_seq, uint8_t command, uint8_t *out,
                     size_t cap)
{
    db_frame f;
    db_frame_begin(&f, out, cap);
    put_header(&f, s, DB_ACK);
    put_u16(&f, acked_seq);
    put_u8(&f, command);
    return finish(&f, s);
}

size_t db_encode_nack(db_sender *s, uint16_t acked_seq, uint8_t command, uint8_t reason,
                      const char *text, uint8_t *out, size_t cap)
{
    db_frame f;
    db_frame_begin(&f, out, cap);
    put_header(&f, s, DB_NACK);
    put_u16(&f, acked_seq);
    put_u8(&f, command);
    put_u8(&f, reason);
    if (text) {
        db_frame_put(&f, (const uint8_t *)text, strlen(text));
    }
    return finish(&f, s);
}
