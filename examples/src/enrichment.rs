//! The order-enrichment example: one topology that uses every kind of
//! join, over a small shop's data, and the model of what it must output.
//!
//! - **Stream–table and stream–global-table joins**: each order (keyed by
//!   order id, `"<customer>,<product>,<quantity>"`) is re-keyed by its
//!   customer, joined with the `customers` table (repartitioned to the
//!   table's partitions), then with the `products` global table by the
//!   product it names; out comes `orders-enriched`. An order for a product
//!   the catalogue lacks is dropped by the inner global join.
//! - **A windowed stream–stream join**: orders and `payments` (keyed by
//!   order id) meet when a payment comes at most [`PAYMENT_WINDOW`] after
//!   its order (grace [`PAYMENT_GRACE`]); out comes `orders-paid`.
//! - **A foreign-key table join**: the latest order per id (a table, from
//!   `to_table`) joined with `customers` by the customer in the order;
//!   out comes `orders-by-customer`, a table that follows both.
//!
//! [`Dataset`] makes the input, deterministically, and the results the
//! topology must produce from it ([`Dataset::expected`]), which the
//! binary and its tests compare with what comes out.

use std::collections::BTreeMap;
use std::time::Duration;

use broker_embedded::ProducerRecord;
use streams_core::{Serdes, Topology};
use streams_dsl::{
    Consumed, JoinWindows, Joined, Materialized, Produced, StreamJoined, StreamsBuilder,
    TableJoined,
};

/// Orders: order id → `"<customer>,<product>,<quantity>"`.
pub const ORDERS_TOPIC: &str = "orders";
/// Payments: order id → amount paid, in cents.
pub const PAYMENTS_TOPIC: &str = "payments";
/// Customers (a table): customer id → name.
pub const CUSTOMERS_TOPIC: &str = "customers";
/// Products (a global table): product id → name.
pub const PRODUCTS_TOPIC: &str = "products";
/// Orders with their customer's name and their product's name, keyed by
/// customer.
pub const ENRICHED_TOPIC: &str = "orders-enriched";
/// Orders paid within the payment window, keyed by order id.
pub const PAID_TOPIC: &str = "orders-paid";
/// The latest order per id with its customer's name (a table's changes).
pub const BY_CUSTOMER_TOPIC: &str = "orders-by-customer";
/// How long after its order a payment may come.
pub const PAYMENT_WINDOW: Duration = Duration::from_secs(300);
/// How late (in stream time) a record may arrive for the payment window.
pub const PAYMENT_GRACE: Duration = Duration::from_secs(60);
/// The timestamp of the first order; customers and products are written
/// a minute before it.
pub const FIRST_ORDER_TIME: i64 = 1_700_000_000_000;

/// The enrichment topology. `application_id` prefixes its internal
/// topics (`None`: the runtime does).
pub fn enrichment_topology(application_id: Option<&str>) -> streams_core::Result<Topology> {
    let builder = match application_id {
        Some(id) => StreamsBuilder::with_application_id(id),
        None => StreamsBuilder::new(),
    };
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let orders = builder.stream::<String, String>(ORDERS_TOPIC, strings());
    let payments = builder.stream::<String, String>(PAYMENTS_TOPIC, strings());
    let customers = builder.table(
        CUSTOMERS_TOPIC,
        strings(),
        Materialized::as_("customers-store"),
    );
    let products = builder.global_table(
        PRODUCTS_TOPIC,
        strings(),
        Materialized::as_("products-store"),
    );

    // Stream–table, then stream–global table.
    orders
        .select_key(|_, order| field(order, 0).to_owned())
        .join_table(
            &customers,
            |order, name| format!("{order},{name}"),
            Joined::new()
                .with_value_serde(Serdes::string())
                .with_name("orders-by-customer-id"),
        )
        .join_global(
            &products,
            |_, order: &String| Some(field(order, 1).to_owned()),
            |order, product| format!("{} × {product} for {}", field(order, 2), field(order, 3)),
        )
        .to(
            ENRICHED_TOPIC,
            Produced::with(Serdes::string(), Serdes::string()),
        );

    // Windowed stream–stream.
    orders
        .join(
            &payments,
            |order, cents| format!("{} paid {}", field(order, 0), cents),
            JoinWindows::of_time_difference_and_grace(PAYMENT_WINDOW, PAYMENT_GRACE)
                .before(Duration::ZERO),
            StreamJoined::with(Serdes::string(), Serdes::string(), Serdes::string())
                .with_store_name("orders-payments"),
        )
        .to(
            PAID_TOPIC,
            Produced::with(Serdes::string(), Serdes::string()),
        );

    // Foreign-key table–table.
    orders
        .to_table(Materialized::as_("latest-orders"))
        .join_foreign_key(
            &customers,
            |order: &String| Some(field(order, 0).to_owned()),
            |order, name| format!("{} for {name}", field(order, 1)),
            TableJoined::as_("orders-customers"),
            Materialized::new(),
        )
        .to_stream()
        .to(
            BY_CUSTOMER_TOPIC,
            Produced::with(Serdes::string(), Serdes::string()),
        );
    builder.build()
}

/// Field `index` of a comma-separated value (empty if missing).
fn field(value: &str, index: usize) -> &str {
    value.split(',').nth(index).unwrap_or("")
}

/// The shop's input, deterministic in `orders`.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Customer id and name.
    pub customers: Vec<(String, String)>,
    /// Product id and name.
    pub products: Vec<(String, String)>,
    /// Order id, value and timestamp.
    pub orders: Vec<(String, String, i64)>,
    /// Order id, cents and timestamp.
    pub payments: Vec<(String, String, i64)>,
}

/// What the topology must output from a [`Dataset`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expected {
    /// `orders-enriched`: (customer, value), one per order whose product
    /// exists.
    pub enriched: Vec<(String, String)>,
    /// `orders-paid`: (order, value), one per order paid within the window.
    pub paid: Vec<(String, String)>,
    /// `orders-by-customer`: the final row per order.
    pub by_customer: BTreeMap<String, String>,
}

impl Dataset {
    /// `orders` orders of 20 customers and 8 products (orders name 10
    /// products: two are missing from the catalogue); 4 in 5 orders are
    /// paid, most within the window, every 9th after it.
    pub fn new(orders: usize) -> Self {
        let customers = (0..20)
            .map(|i| (format!("c{i}"), format!("Customer {i}")))
            .collect();
        let products = (0..8)
            .map(|i| (format!("p{i}"), format!("Product {i}")))
            .collect();
        let mut order_records = Vec::with_capacity(orders);
        let mut payments = Vec::new();
        for i in 0..orders {
            let time = FIRST_ORDER_TIME + i as i64 * 1_000;
            let value = format!("c{},p{},{}", i % 20, i % 10, 1 + i % 3);
            order_records.push((format!("o{i}"), value, time));
            if i % 5 != 4 {
                let delay = if i % 9 == 8 {
                    400_000
                } else {
                    1_000 * (i as i64 % 7)
                };
                payments.push((
                    format!("o{i}"),
                    format!("{}", 100 * (i % 13 + 1)),
                    time + delay,
                ));
            }
        }
        // A topic holds its records in time order, as a payment service
        // writes them: the late payments come after later orders' ones.
        payments.sort_by_key(|(_, _, time)| *time);
        Self {
            customers,
            products,
            orders: order_records,
            payments,
        }
    }

    /// The records of each input topic, in the order to write them.
    pub fn records(&self) -> Vec<(&'static str, Vec<ProducerRecord>)> {
        let table_time = FIRST_ORDER_TIME - 60_000;
        let rows = |topic: &'static str, rows: &[(String, String)]| {
            rows.iter()
                .map(|(k, v)| {
                    ProducerRecord::new(topic, v.clone().into_bytes())
                        .key(k.clone().into_bytes())
                        .timestamp(table_time)
                })
                .collect::<Vec<_>>()
        };
        let events = |topic: &'static str, events: &[(String, String, i64)]| {
            events
                .iter()
                .map(|(k, v, t)| {
                    ProducerRecord::new(topic, v.clone().into_bytes())
                        .key(k.clone().into_bytes())
                        .timestamp(*t)
                })
                .collect::<Vec<_>>()
        };
        vec![
            (CUSTOMERS_TOPIC, rows(CUSTOMERS_TOPIC, &self.customers)),
            (PRODUCTS_TOPIC, rows(PRODUCTS_TOPIC, &self.products)),
            (ORDERS_TOPIC, events(ORDERS_TOPIC, &self.orders)),
            (PAYMENTS_TOPIC, events(PAYMENTS_TOPIC, &self.payments)),
        ]
    }

    /// The results the topology must produce.
    pub fn expected(&self) -> Expected {
        let customers: BTreeMap<&str, &str> = self
            .customers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let products: BTreeMap<&str, &str> = self
            .products
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut expected = Expected::default();
        for (id, order, time) in &self.orders {
            let customer = field(order, 0);
            let name = customers.get(customer).copied().unwrap_or_default();
            if let Some(product) = products.get(field(order, 1)) {
                expected.enriched.push((
                    customer.to_owned(),
                    format!("{} × {product} for {name}", field(order, 2)),
                ));
            }
            expected
                .by_customer
                .insert(id.clone(), format!("{} for {name}", field(order, 1)));
            for (paid_id, cents, paid_time) in &self.payments {
                let window = PAYMENT_WINDOW.as_millis() as i64;
                if paid_id == id && (*time..=time + window).contains(paid_time) {
                    expected
                        .paid
                        .push((id.clone(), format!("{customer} paid {cents}")));
                }
            }
        }
        expected.enriched.sort();
        expected.paid.sort();
        expected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streams_core::{TestRecord, TopologyTestDriver};

    /// The topology, run by the test driver, produces what the model says.
    #[test]
    fn the_topology_produces_what_the_model_says() {
        let data = Dataset::new(60);
        let driver = TopologyTestDriver::new(enrichment_topology(None).unwrap()).unwrap();
        for (topic, records) in data.records() {
            let input = driver.create_input_topic(topic, Serdes::string(), Serdes::string());
            for r in records {
                let key = r.key.map(|k| String::from_utf8(k.to_vec()).unwrap());
                let value = r.value.map(|v| String::from_utf8(v.to_vec()).unwrap());
                input
                    .pipe_record(TestRecord::from_parts(key, value, r.timestamp.unwrap()))
                    .unwrap();
            }
        }
        let read = |topic: &str| {
            driver
                .create_output_topic(topic, Serdes::string(), Serdes::string())
                .read_key_values_to_list()
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k.unwrap(), v))
                .collect::<Vec<_>>()
        };
        let expected = data.expected();
        let mut enriched: Vec<_> = read(ENRICHED_TOPIC)
            .into_iter()
            .map(|(k, v)| (k, v.unwrap()))
            .collect();
        enriched.sort();
        assert_eq!(enriched, expected.enriched);
        let mut paid: Vec<_> = read(PAID_TOPIC)
            .into_iter()
            .map(|(k, v)| (k, v.unwrap()))
            .collect();
        paid.sort();
        assert_eq!(paid, expected.paid);
        let mut by_customer = BTreeMap::new();
        for (k, v) in read(BY_CUSTOMER_TOPIC) {
            match v {
                Some(v) => by_customer.insert(k, v),
                None => by_customer.remove(&k),
            };
        }
        assert_eq!(by_customer, expected.by_customer);
        assert!(!expected.enriched.is_empty() && !expected.paid.is_empty());
    }
}
