//! A [`CryptoProvider`] for `jsonwebtoken` that verifies RSA signatures
//! (RS256/384/512 and PS256/384/512) and nothing else. PingOne signs with RSA;
//! leaving out the ECDSA and EdDSA code of the full `rust_crypto` backend
//! keeps the Workers bundles small. Any other algorithm, and any attempt to
//! sign, is an error (never a panic).
//!
//! Call [`install`] once before the first `jsonwebtoken::decode`.
//! [`jwks`] verifies a token against a JWK set, for both workers.

pub mod jwks;
pub use jwks::{candidate_keys, decode_with_any};

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The provider; see the crate docs.
pub static PROVIDER: CryptoProvider =
    CryptoProvider { signer_factory: no_signer, verifier_factory: verifier, key_utils: KEY_UTILS };

/// Key utilities of a verification-only RSA backend: JWK thumbprint digests,
/// and refusals for everything that needs private or DER keys. Shared with
/// backends that verify by other means (the MCP worker's WebCrypto one).
pub const KEY_UTILS: KeyUtils = KeyUtils {
    rsa_pub_components_from_private_key: |_| {
        Err(ErrorKind::InvalidRsaKey("signing keys are not supported".into()).into())
    },
    rsa_pub_components_from_public_key: |_| Err(ErrorKind::InvalidRsaKey("DER keys are not supported".into()).into()),
    ec_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidEcdsaKey.into()),
    ed_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidEddsaKey.into()),
    compute_digest,
};

/// Makes [`PROVIDER`] jsonwebtoken's provider for this process (or isolate).
/// Returns quietly if a provider was installed already.
pub fn install() {
    let _ = PROVIDER.install_default();
}

/// The signer factory of a verification-only backend: every algorithm is refused.
pub fn no_signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    Ok(match hash {
        ThumbprintHash::SHA256 => Sha256::digest(data).to_vec(),
        ThumbprintHash::SHA384 => Sha384::digest(data).to_vec(),
        ThumbprintHash::SHA512 => Sha512::digest(data).to_vec(),
        #[allow(unreachable_patterns)]
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    })
}

/// The RSA signature scheme and digest of a JWS algorithm.
#[derive(Clone, Copy)]
enum Scheme {
    Pkcs1(Algorithm),
    Pss(Algorithm),
}

struct RsaVerifier {
    scheme: Scheme,
    key: RsaPublicKey,
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let scheme = match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => Scheme::Pkcs1(*alg),
        Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => Scheme::Pss(*alg),
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    let key = match key.kind() {
        DecodingKeyKind::RsaModulusExponent { n, e } => {
            RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
                .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?
        }
        DecodingKeyKind::SecretOrDer(_) => return Err(ErrorKind::InvalidKeyFormat.into()),
    };
    Ok(Box::new(RsaVerifier { scheme, key }))
}

impl signature::Verifier<Vec<u8>> for RsaVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let result = match self.scheme {
            Scheme::Pkcs1(Algorithm::RS256) => {
                self.key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg), sig)
            }
            Scheme::Pkcs1(Algorithm::RS384) => {
                self.key.verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(msg), sig)
            }
            Scheme::Pkcs1(_) => self.key.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg), sig),
            Scheme::Pss(Algorithm::PS256) => self.key.verify(Pss::new::<Sha256>(), &Sha256::digest(msg), sig),
            Scheme::Pss(Algorithm::PS384) => self.key.verify(Pss::new::<Sha384>(), &Sha384::digest(msg), sig),
            Scheme::Pss(_) => self.key.verify(Pss::new::<Sha512>(), &Sha512::digest(msg), sig),
        };
        result.map_err(signature::Error::from_source)
    }
}

impl JwtVerifier for RsaVerifier {
    fn algorithm(&self) -> Algorithm {
        match self.scheme {
            Scheme::Pkcs1(a) | Scheme::Pss(a) => a,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as FULL;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;

    fn keypair() -> (EncodingKey, DecodingKey) {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let der = private.to_pkcs1_der().unwrap();
        let public = private.to_public_key();
        (
            EncodingKey::from_rsa_der(der.as_bytes()),
            DecodingKey::from_rsa_raw_components(&public.n().to_bytes_be(), &public.e().to_bytes_be()),
        )
    }

    #[test]
    fn verifies_what_the_full_backend_signs_and_nothing_else() {
        let (enc, dec) = keypair();
        for alg in
            [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512]
        {
            let sig = (FULL.signer_factory)(&alg, &enc).unwrap().try_sign(b"header.payload").unwrap();
            let v = (PROVIDER.verifier_factory)(&alg, &dec).unwrap();
            assert!(v.verify(b"header.payload", &sig).is_ok(), "{alg:?}");
            assert!(v.verify(b"header.tampered", &sig).is_err(), "{alg:?}");
        }
        let rs = (FULL.signer_factory)(&Algorithm::RS256, &enc).unwrap().try_sign(b"m").unwrap();
        let as_pss = (PROVIDER.verifier_factory)(&Algorithm::PS256, &dec).unwrap();
        assert!(as_pss.verify(b"m", &rs).is_err(), "an RS256 signature is not a PS256 one");
    }

    #[test]
    fn other_algorithms_and_signing_are_errors_not_panics() {
        let (enc, dec) = keypair();
        for alg in [Algorithm::HS256, Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
            assert!((PROVIDER.verifier_factory)(&alg, &dec).is_err(), "{alg:?}");
        }
        assert!((PROVIDER.verifier_factory)(&Algorithm::RS256, &DecodingKey::from_secret(b"k")).is_err());
        assert!((PROVIDER.signer_factory)(&Algorithm::RS256, &enc).is_err());
    }
}
