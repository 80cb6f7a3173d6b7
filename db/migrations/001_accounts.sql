-- The system of record for prepaid accounts: what the breach exposed and what a reset changes.
CREATE TABLE IF NOT EXISTS accounts (
  id                  bigint PRIMARY KEY,                 -- opaque id: the only key the pipeline passes around
  account_number      text NOT NULL UNIQUE,
  full_name           text NOT NULL,
  phone               text,                               -- E.164 when valid; raw text kept as imported otherwise
  phone_type          text CHECK (phone_type IN ('mobile', 'landline', 'voip', 'unknown')),
  email               text,
  plan                text NOT NULL DEFAULT 'prepaid',
  status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'closed', 'deleted')),
  -- PIN verifier: scrypt(pepper-HMAC(pin), salt). The pepper key lives outside the database.
  pin_hash            bytea,
  pin_salt            bytea,
  pin_algo            text,                               -- e.g. 'scrypt:N=131072,r=8,p=1;pepper=v1'
  pin_status          text NOT NULL DEFAULT 'set' CHECK (pin_status IN ('set', 'reset_required')),
  credential_version  integer NOT NULL DEFAULT 1,
  pin_reset_at        timestamptz,
  pin_reset_reason    text,
  sms_opt_out         boolean NOT NULL DEFAULT false,
  email_opt_out       boolean NOT NULL DEFAULT false,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS accounts_status_idx ON accounts (status, id);
