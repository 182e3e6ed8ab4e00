{{ config(materialized='view') }}

-- Every date a customer's lifecycle stage may change, with the stage from that date (see the
-- macro): registration, each purchase day, and each line a stretch without purchase crosses
-- before the next purchase and the as-of date. Consecutive repeats are removed downstream.
{{ lifecycle_stage_events(ref('int_customer_purchase_days'), ref('int_customer_registrations')) }}
