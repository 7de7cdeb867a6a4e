/*
 * detak firmware-bridge protocol v1 (document revision 1.1) -- reference encoder for device
 * firmware (C99).
 *
 * Spec: docs/protocol.md in the detak repository. This file is the reference for firmware
 * authors: it needs only <stdint.h>/<stddef.h>/<string.h>, allocates nothing, and encodes
 * straight into the caller's output buffer (no packet-sized scratch buffer on the stack).
 *
 * Usage (one frame):
 *     uint8_t buf[DB_WIRE_MAX(payload_len)];
 *     size_t n = db_encode_lead_off(&sender, sample_index, mask, buf, sizeof buf);
 *     if (n) uart_write(buf, n);            // n includes the trailing 0x00 delimiter
 *
 * Every encoder returns the number of bytes written, or 0 if the buffer was too small or an
 * argument was out of range. Each successful call uses the next sequence number of `sender`.
 *
 * Protocol rules that touch the encoder (docs/protocol.md, revision 1.1):
 *  - a retried host command (same seq and type as the one before) is answered again by calling
 *    the encoders again with the same contents: the repeat takes fresh sequence numbers. Do not
 *    resend stored bytes of the first answer (their sequence numbers are behind);
 *  - keep one db_sender from power-up: its seq is never reset by START, STOP or a link loss;
 *  - writing a lone 0x00 at power-up and whenever the link (re)opens is allowed and recommended
 *    (receivers skip empty frames; it ends any partial frame they hold);
 *  - n_samples may differ from one db_encode_samples call to the next; timestamp_us is a
 *    free-running microsecond clock of any origin;
 *  - send LEAD_OFF / CAL_STATE before the SAMPLES block that holds their sample.
 *
 * Licence: Apache-2.0, like detak.
 */
#ifndef DETAK_BRIDGE_H
#define DETAK_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DB_PROTOCOL_VERSION 1u

/* message types: device -> host */
#define DB_DEVICE_INFO   0x01u
#define DB_SAMPLES       0x10u
#define DB_LEAD_OFF      0x11u
#define DB_CAL_STATE     0x12u
#define DB_BATTERY       0x13u
#define DB_ERROR         0x14u
#define DB_STREAM_END    0x15u
#define DB_ACK           0x20u
#define DB_NACK          0x21u
/* message types: host -> device */
#define DB_GET_INFO      0x80u
#define DB_START         0x81u
#define DB_STOP          0x82u
#define DB_SET_CAL_PULSE 0x83u
#define DB_GET_BATTERY   0x84u

/* sample formats (bytes per value) */
#define DB_INT16 2u
#define DB_INT24 3u

/* NACK reasons */
#define DB_NACK_UNKNOWN_COMMAND  1u
#define DB_NACK_BAD_LENGTH       2u
#define DB_NACK_BAD_VALUE        3u
#define DB_NACK_WRONG_STATE      4u
#define DB_NACK_ALREADY_IN_STATE 5u
#define DB_NACK_UNSUPPORTED      6u
#define DB_NACK_BAD_VERSION      7u
#define DB_NACK_BUSY             8u

/* Worst-case wire size of a frame with a payload of n bytes:
 * header 4 + payload n + CRC 2, COBS overhead 1 + (len / 254), delimiter 1. */
#define DB_PACKET_LEN(n) (4u + (size_t)(n) + 2u)
#define DB_WIRE_MAX(n) (DB_PACKET_LEN(n) + DB_PACKET_LEN(n) / 254u + 2u)

typedef struct {
    uint16_t seq;                 /* sequence number of the next packet; 0 at power-up */
} db_sender;

typedef struct {
    uint32_t sample_rate_mhz;     /* millihertz: 500 Hz -> 500000 */
    float lsb_nv;                 /* nanovolts per count */
    uint8_t adc_bits;
    uint8_t sample_format;        /* DB_INT16 or DB_INT24 */
    uint8_t n_channels;           /* 1..32 */
    uint8_t n_electrodes;         /* 0..32 */
    const char *model;            /* each string at most 64 bytes */
    const char *firmware;
    const char *serial;
    const char *const *channels;  /* n_channels lead names ("I", "II", "V1", ...) */
    const char *const *electrodes;/* n_electrodes names ("RA", "LA", ...) */
} db_device_info;

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF (pass DB_CRC_INIT), no reflection, xorout 0.
 * db_crc16((const uint8_t *)"123456789", 9, DB_CRC_INIT) == 0x29B1. */
#define DB_CRC_INIT 0xFFFFu
uint16_t db_crc16(const uint8_t *data, size_t len, uint16_t crc);

/* Plain COBS of `len` bytes (no CRC, no delimiter); returns the encoded length, 0 if `cap` is
 * too small. Needs at most len + len / 254 + 1 bytes. */
size_t db_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* Incremental frame writer: COBS-encodes and CRCs on the fly into `out`. */
typedef struct {
    uint8_t *out;
    size_t cap, pos, code_pos;
    uint8_t code;                 /* length code of the open COBS block */
    uint8_t after_full;           /* the open block follows a full (0xFF) block */
    uint8_t overflow;
    uint16_t crc;
} db_frame;

void db_frame_begin(db_frame *f, uint8_t *out, size_t cap);
void db_frame_put(db_frame *f, const uint8_t *data, size_t n);
size_t db_frame_end(db_frame *f);          /* appends CRC, closes COBS, adds 0x00 */

/* One whole packet (header + payload) -> wire bytes; uses and advances s->seq. */
size_t db_encode_packet(db_sender *s, uint8_t type, const uint8_t *payload, size_t len,
                        uint8_t *out, size_t cap);

size_t db_encode_device_info(db_sender *s, const db_device_info *info, uint8_t *out, size_t cap);
/* samples: n_samples x n_channels values, sample-major (s0c0, s0c1, ..., s1c0, ...) */
size_t db_encode_samples(db_sender *s, uint32_t first_sample, uint32_t timestamp_us,
                         uint8_t sample_format, uint8_t n_channels, uint8_t n_samples,
                         const int32_t *samples, uint8_t *out, size_t cap);
size_t db_encode_lead_off(db_sender *s, uint32_t sample, uint32_t mask, uint8_t *out,
                          size_t cap);
size_t db_encode_cal_state(db_sender *s, uint32_t sample, uint8_t on, uint8_t *out, size_t cap);
size_t db_encode_battery(db_sender *s, uint8_t percent, uint16_t millivolts, uint8_t charging,
                         uint8_t external_power, uint8_t *out, size_t cap);
size_t db_encode_error(db_sender *s, uint8_t code, uint32_t sample, const char *text,
                       uint8_t *out, size_t cap);
size_t db_encode_stream_end(db_sender *s, uint32_t next_sample, uint8_t reason, uint8_t *out,
                            size_t cap);
size_t db_encode_ack(db_sender *s, uint16_t acked_seq, uint8_t command, uint8_t *out,
                     size_t cap);
size_t db_encode_nack(db_sender *s, uint16_t acked_seq, uint8_t command, uint8_t reason,
                      const char *text, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* DETAK_BRIDGE_H */
