#define BOOST_TEST_MODULE natsbus_threads
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>
