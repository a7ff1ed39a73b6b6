//! A placeholder for a type whose lattice is not written yet: every call
//! raises `{badcrdt, {not_implemented, Type}}`.

/// Define `$name<T>` as a type that refuses every call.
#[macro_export]
#[doc(hidden)]
macro_rules! stub_lattice {
    ($name:ident, $tag:expr) => {
        /// Not implemented yet.
        #[derive(Debug, Clone)]
        pub struct $name<T>(std::marker::PhantomData<T>);

        impl<T: $crate::term::Term> $crate::lattice::Lattice<T> for $name<T> {
            const TAG: $crate::term::Atom = $tag;
            fn decode(_: &T, _: &mut $crate::decode::Decoder) -> $crate::error::Result<Self> {
                Err($crate::error::BadCrdt::NotImplemented($tag))
            }
            fn encode<B: $crate::term::Builder<T = T>>(&self, b: &B) -> T {
                b.nil()
            }
            fn bottom() -> Self {
                $name(std::marker::PhantomData)
            }
            fn merge(&self, _: &Self) -> $crate::error::Result<$crate::lattice::Merged<Self>> {
                Err($crate::error::BadCrdt::NotImplemented($tag))
            }
            fn equal(&self, _: &Self) -> $crate::error::Result<bool> {
                Err($crate::error::BadCrdt::NotImplemented($tag))
            }
            fn is_inflation(&self, _: &Self) -> $crate::error::Result<bool> {
                Err($crate::error::BadCrdt::NotImplemented($tag))
            }
            fn is_bottom(&self) -> bool {
                true
            }
            fn query<B: $crate::term::Builder<T = T>>(&self, _: &B) -> $crate::error::Result<T> {
                Err($crate::error::BadCrdt::NotImplemented($tag))
            }
            fn delta(&self, _: &Self) -> $crate::error::Result<Self> {
                Err($crate::error::BadCrdt::NotImplemented($tag))
            }
            fn delta_mutate<C: $crate::lattice::MutateCx<T>>(
                &self,
                _: &T,
                _: &T,
                _: &mut C,
            ) -> std::result::Result<Self, $crate::error::MutateError<T>> {
                Err($crate::error::BadCrdt::NotImplemented($tag).into())
            }
        }
    };
}
