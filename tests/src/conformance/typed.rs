//! The generated types behind the spec's schemas: typed round trips per component, and per
//! submit operation its input, output and client method. The tables come from the
//! catalogue's `for_each_*` macros: a new page is covered with no edit here.

use falq_api::types;
use falq_api::{Endpoint, InputErrors, Validate, endpoints};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// JSON → generated type → JSON.
pub type RoundTrip = fn(&Value) -> Result<Value, String>;

/// Deserializes into a generated type; the error names the field (`num_images: invalid
/// type: ...`, `(body): missing field `prompt``).
pub fn deserialize<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize::<_, T>(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { "(body)".to_string() } else { path };
        format!("{path}: {}", e.into_inner())
    })
}

/// Deserializes into `T` and serializes back.
pub fn roundtrip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<Value, String> {
    let typed: T = deserialize(value)?;
    serde_json::to_value(&typed).map_err(|e| format!("(body): does not serialize: {e}"))
}

/// One component schema's generated type.
#[derive(Clone, Copy)]
pub struct ComponentType {
    /// The component name (`QueueStatus`).
    pub name: &'static str,
    /// JSON → type → JSON.
    pub roundtrip: RoundTrip,
    /// The JSON names of a struct's fields, as its `Deserialize` asks for them; `None`
    /// for enums, unions and maps.
    pub fields: fn() -> Option<&'static [&'static str]>,
}

macro_rules! component_types {
    ($($name:literal => $ty:ty),* $(,)?) => {
        /// The generated type of each component schema.
        pub const COMPONENT_TYPES: &[ComponentType] = &[
            $(ComponentType { name: $name, roundtrip: roundtrip::<$ty>, fields: struct_fields::<$ty> }),*
        ];
    };
}

falq_api::for_each_component!(component_types);

/// The generated type of a component.
pub fn component_type(component: &str) -> Option<ComponentType> {
    COMPONENT_TYPES.iter().find(|c| c.name == component).copied()
}

/// The round trip of a component's generated type.
pub fn component_roundtrip(component: &str) -> Option<RoundTrip> {
    component_type(component).map(|c| c.roundtrip)
}

/// The JSON field names a struct's `Deserialize` asks for (renames applied), read by a
/// deserializer that records them and stops; `None` for anything but a struct.
pub fn struct_fields<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut recorder = FieldRecorder(None);
    let _ = T::deserialize(&mut recorder);
    recorder.0
}

struct FieldRecorder(Option<&'static [&'static str]>);

impl<'de> serde::Deserializer<'de> for &mut FieldRecorder {
    type Error = serde::de::value::Error;

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = Some(fields);
        Err(serde::de::Error::custom("fields recorded"))
    }

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// Parses a string with an enum's `FromStr`; the error as displayed.
pub type EnumParse = fn(&str) -> Result<(), String>;

macro_rules! enum_parsers {
    ($($name:literal => $ty:ty),* $(,)?) => {
        /// The `FromStr` of each string-enum component's generated type.
        pub const ENUM_PARSERS: &[(&str, EnumParse)] = &[
            $(($name, |s| s.parse::<$ty>().map(drop).map_err(|e| e.to_string()))),*
        ];
    };
}

falq_api::for_each_enum!(enum_parsers);

/// The `FromStr` of an enum component's generated type.
pub fn enum_parser(component: &str) -> Option<EnumParse> {
    ENUM_PARSERS.iter().find(|(name, _)| *name == component).map(|(_, f)| *f)
}

/// What the suite knows of one submit operation's generated code.
#[derive(Clone, Copy, Debug)]
pub struct TypedEndpoint {
    /// The operation id (`flux_1_dev_redux`).
    pub operation_id: &'static str,
    /// Its entry in the catalogue.
    pub info: &'static falq_api::EndpointInfo,
    /// The generated client method that submits to it.
    pub method_name: &'static str,
    /// The name of the generated input type.
    pub input_type: &'static str,
    /// The name of the generated output type.
    pub output_type: &'static str,
    /// JSON → input type → JSON.
    pub roundtrip: RoundTrip,
    /// JSON → input type → [`Validate::validate`]; the outer error is the deserialization's.
    pub validate: fn(&Value) -> Result<Result<(), InputErrors>, String>,
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

fn validate_as<T: DeserializeOwned + Validate>(value: &Value) -> Result<Result<(), InputErrors>, String> {
    let typed: T = deserialize(value)?;
    Ok(typed.validate())
}

impl TypedEndpoint {
    fn of<E: Endpoint>(method_name: &'static str) -> Self {
        TypedEndpoint {
            operation_id: E::info().operation_id,
            info: E::info(),
            method_name,
            input_type: short_type_name::<E::Input>(),
            output_type: short_type_name::<E::Output>(),
            roundtrip: roundtrip::<E::Input>,
            validate: validate_as::<E::Input>,
        }
    }
}

/// Lists each covered endpoint once: its marker type in `falq_api::endpoints` and its client method.
macro_rules! covered_endpoints {
    ($($marker:ident => $method:ident),* $(,)?) => {
        /// Every submit operation the suite covers.
        pub fn typed_endpoints() -> Vec<TypedEndpoint> {
            vec![$(TypedEndpoint::of::<endpoints::$marker>(stringify!($method))),*]
        }

        /// Submits a JSON body to an operation with the generated client, through its typed
        /// input. The outer error: the operation has no case, or the body is not its input;
        /// the inner one: what the client answered (a refusal before sending included).
        pub async fn submit_with(
            client: &falq_api::Client,
            operation_id: &str,
            body: &Value,
        ) -> Result<Result<types::QueueStatus, String>, String> {
            $(
                if operation_id == <endpoints::$marker as Endpoint>::info().operation_id {
                    let input: <endpoints::$marker as Endpoint>::Input =
                        deserialize(body).map_err(|e| format!("operation {operation_id}: body is not its input: {e}"))?;
                    return Ok(client.$method().body(input).send().await.map(|r| r.into_inner()).map_err(|e| e.to_string()));
                }
            )*
            Err(format!("operation {operation_id} has no conformance case"))
        }

        /// Submits like [`submit_with`] and answers the HTTP status with the typed body as
        /// JSON, whether the spec lists the status as a success or an error.
        pub async fn submit_answer(client: &falq_api::Client, operation_id: &str, body: &Value) -> Result<(u16, Value), String> {
            $(
                if operation_id == <endpoints::$marker as Endpoint>::info().operation_id {
                    let input: <endpoints::$marker as Endpoint>::Input =
                        deserialize(body).map_err(|e| format!("operation {operation_id}: body is not its input: {e}"))?;
                    let typed = |v: Result<Value, serde_json::Error>| v.map_err(|e| e.to_string());
                    return match client.$method().body(input).send().await {
                        Ok(r) => Ok((r.status().as_u16(), typed(serde_json::to_value(r.into_inner()))?)),
                        Err(falq_api::Error::ErrorResponse(r)) => Ok((r.status().as_u16(), typed(serde_json::to_value(r.into_inner()))?)),
                        Err(e) => Err(e.to_string()),
                    };
                }
            )*
            Err(format!("operation {operation_id} has no conformance case"))
        }
    };
}

falq_api::for_each_endpoint!(covered_endpoints);

/// The queue operations the suite covers (their request cases live in `conformance_requests`).
pub const QUEUE_OPERATIONS: &[&str] = &["queue_status", "queue_status_stream", "queue_result", "queue_cancel"];

/// The typed endpoint of an operation id.
pub fn typed_endpoint(operation_id: &str) -> Option<TypedEndpoint> {
    typed_endpoints().into_iter().find(|e| e.operation_id == operation_id)
}
