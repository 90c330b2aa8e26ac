// ecq/ecq.hpp — READ ME FIRST
//
// Umbrella header: includes every host/device public header of the codec.
// Pipeline, one header per stage:
//   ecq/histogram.hpp         count symbols, empirical entropy
//   ecq/frequency_table.hpp   normalise counts to frequencies summing to 2^S
//   ecq/symbol_table.hpp      encode table and packed decode table (+ view)
//   ecq/rans_state.hpp        one rANS state: parameters and operations
//   ecq/interleaved_rans.hpp  N-way interleaved encoder and decoders
//   ecq/symbol_packing.hpp    several small codes per symbol, raw low bits
// Support: ecq/config.hpp (macros), ecq/status.hpp (error codes).
#ifndef ECQ_ECQ_HPP
#define ECQ_ECQ_HPP

#include "config.hpp"
#include "frequency_table.hpp"
#include "histogram.hpp"
#include "interleaved_rans.hpp"
#include "rans_state.hpp"
#include "status.hpp"
#include "symbol_packing.hpp"
#include "symbol_table.hpp"

#endif  // ECQ_ECQ_HPP
