"""Delivery channels: SendGrid email, Twilio SMS, signed JSON webhooks, hashed ad lists.

Each takes rendered messages in provider-sized batches and answers one `Outcome` per send_id
(see `base`); `activations.settings.build_channel` picks the live channel or a dry-run stand-in.
"""
