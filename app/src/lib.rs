//! Console pages and components (Leptos), shared by SSR and hydration.
