// Package export is the export room of the consumer: one lane per partition
// that takes the lifecycle spans the partition's worker finishes, batches
// them, uploads them over OTLP/gRPC and reports how many are acknowledged,
// always a prefix of those emitted. It knows nothing of Kafka: package
// consumer commits a record once the lane acknowledged its spans.
//
// Two lanes keep the same contract (see Lane): NewDirect builds OTLP
// messages straight from the spans and uploads them through an
// otlptrace.Client; NewSDK goes through an SDK tracer provider, blocking
// batch processor and the process's otlptrace exporter, and is the
// reference the direct lane matches byte for byte. Both share one client,
// built with ClientOptions, so otlptracegrpc stays in charge of the
// connection, TLS, headers, compression and the OTEL_EXPORTER_OTLP_*
// settings.
//
// # Outcome classes
//
// Every upload attempt is classified by Classify, in one place for both
// lanes, and reported to Observer.Result. A lane never drops a span: it
// acknowledges a span only once the endpoint took it or refused it for
// good, and then only after telling the Observer.
//
//	class           outcome                                what the lane does
//	--------------  -------------------------------------  ---------------------------------------------
//	Accepted        OK                                     acknowledge the batch
//	Retryable       Unavailable, DeadlineExceeded,         retry the same request with backoff
//	                Aborted, Canceled, ResourceExhausted   (RetryInitial doubling up to RetryMax) until
//	                (a quota), connection errors,          it is accepted or the lane is aborted
//	                anything unrecognised
//	PartialSuccess  OK carrying partial_success            the request was accepted: report the count
//	                (rejected_spans and a message)         and message to Observer.Partial, acknowledge,
//	                                                       never resend
//	RejectedData    InvalidArgument; ResourceExhausted     split the batch in halves, recursively, until
//	                "larger than max" (grpc-go's size      every span went out in an accepted request or
//	                limits, client or server side); the    is alone and refused; report each refused span
//	                client's "request message too large"   to Observer.Rejected with its emission index,
//	                                                       then acknowledge in order
//	RejectedConfig  Unauthenticated, PermissionDenied,     keep retrying with backoff, as Retryable:
//	                Unimplemented, NotFound, an invalid    only an operator can fix it and dropping
//	                header (grpc-go's Internal             would lose spans; the class tells the caller
//	                "header key ...")                      to report not ready and to log it loudly
//
// A retryable status carrying a google.rpc.RetryInfo detail (a collector
// shedding load says when to come back) is retried after the delay it asks
// for instead of the backoff, capped at 5 minutes.
//
// Splitting costs about 2k·log2(n) extra requests for k refused spans in a
// batch of n. An endpoint that refuses every request as InvalidArgument (a
// resource it rejects, say) gets every span reported as rejected, one
// request each: the class says the data is at fault, and the lane believes
// it.
//
// A partial success is visible only through the interceptor ClientOptions
// installs: otlptracegrpc folds it into an error of an internal type.
// ClientOptions also bounds gRPC's reconnect backoff by the lane's retry
// settings, so that exports resume within about RetryMax of the endpoint
// coming back.
package export
