"""The screening app on the kiosk: pages, local store, outbox."""
