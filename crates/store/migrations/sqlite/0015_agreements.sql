-- 协议 (agreements) for debit collection (代扣). No personal data in clear:
-- the card is kept masked (6222****1234) with keyed fingerprints (hex
-- HMAC-SHA256) of the card and ID numbers, the phone masked; the name is
-- not kept. `agreement_no` is the channel's number, set once ACTIVE.
CREATE TABLE agreements (
    id INTEGER PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    sign_serial TEXT NOT NULL,
    member_id TEXT NOT NULL,
    method TEXT NOT NULL,
    channel TEXT NOT NULL,
    bank TEXT,
    card_masked TEXT NOT NULL,
    card_fingerprint TEXT NOT NULL,
    id_number_fingerprint TEXT NOT NULL,
    phone_masked TEXT,
    agreement_no TEXT UNIQUE,
    status TEXT NOT NULL,
    confirmation_token TEXT,
    confirm_attempts BIGINT NOT NULL DEFAULT 0,
    failure_code TEXT,
    failure_message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (merchant_id, sign_serial)
);
CREATE INDEX agreements_card ON agreements (merchant_id, member_id, card_fingerprint);

-- The agreement a debit payment is made under.
ALTER TABLE payment_orders ADD COLUMN agreement_no TEXT;
