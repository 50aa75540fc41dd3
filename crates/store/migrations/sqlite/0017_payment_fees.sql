-- 计费 on payments: every fee a payment is charged, per side (the merchant,
-- `payee`; the member who pays, `payer`), with the rule, the collection mode
-- and how it is paid (`funding`). A fee taken from a balance when the
-- payment is accepted (prepaid fee account, a payout's real-time fee, a
-- member's fee) is RESERVED by a pending ledger transfer "fee-hold-ID" and
-- becomes CHARGED ("fee-post-ID") or VOIDED ("fee-void-ID") with its
-- payment; a collection's real-time or post-paid fee is written CHARGED with
-- the payment's success. Post-paid fees are billed by fee_bills.
CREATE TABLE payment_fees (
    id INTEGER PRIMARY KEY,
    payment_id BIGINT NOT NULL REFERENCES payment_orders (id),
    side TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    party_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    collection TEXT NOT NULL,
    funding TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    fee_minor BIGINT NOT NULL CHECK (fee_minor >= 0),
    business_date TEXT NOT NULL,
    status TEXT NOT NULL,
    bill_id BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (payment_id, side)
);
-- What a month-end run bills: charged post-paid fees no bill holds yet.
CREATE INDEX payment_fees_unbilled ON payment_fees (merchant_id, business_date)
    WHERE bill_id IS NULL AND collection = 'post_paid' AND status = 'CHARGED';
CREATE INDEX payment_fees_bill ON payment_fees (bill_id) WHERE bill_id IS NOT NULL;

-- 后收 fee bills: one per merchant, currency and month. A bill is created
-- with its fees marked (one transaction), then collected in the ledger under
-- the key "fee-bill-ID" (merchant available -> platform fee income).
CREATE TABLE fee_bills (
    id INTEGER PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    month TEXT NOT NULL,
    status TEXT NOT NULL,
    charge_count BIGINT NOT NULL,
    fees_minor BIGINT NOT NULL,
    up_to_business_date TEXT NOT NULL,
    transfer_id BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (merchant_id, currency, month)
);
CREATE INDEX fee_bills_status ON fee_bills (status);

-- Why a payment failed, for the merchant: FEE_ACCOUNT_INSUFFICIENT, ...
ALTER TABLE payment_orders ADD COLUMN failure_code TEXT;

-- A charge of a payment that failed gives its place in the period back.
ALTER TABLE fee_charges ADD COLUMN released_at BIGINT;
